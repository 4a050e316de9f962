"""Network guard: this Python process (and every Python child that inherits PYTHONPATH)
cannot open a network connection to anything but loopback, and each attempt is logged.

Put this folder first on PYTHONPATH; set NETGUARD_LOG to a file to record refused attempts. The local
Kaggle service runs notebooks under it (internet off, as on Kaggle); the tests run offline checks under it.
It patches Python's socket layer (``socket.connect``/``connect_ex``/``getaddrinfo``), which covers
urllib, http.client, requests, pip and keras' downloads. It does not see C libraries that open
sockets themselves (libcurl inside TensorFlow's file systems, zmq).
"""

import errno
import ipaddress
import os
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_local(host) -> bool:
    if host is None or host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, host) -> OSError:
    log = os.environ.get("NETGUARD_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {what} {host}\n")
    return OSError(errno.ENETUNREACH, f"netguard: network access refused ({what} {host})")


def _guarded_connect(original):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise _refuse("connect", address[0])
        return original(self, address)

    return connect


_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local(host.decode() if isinstance(host, bytes) else host):
        raise _refuse("resolve", host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect(socket.socket.connect)
socket.socket.connect_ex = _guarded_connect(socket.socket.connect_ex)
socket.getaddrinfo = _guarded_getaddrinfo
