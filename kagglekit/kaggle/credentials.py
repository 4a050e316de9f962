"""Kaggle API credentials, found where the ``kaggle`` tool looks, and never shown to anyone.

Order (the same as the ``kaggle`` tool): ``KAGGLE_USERNAME`` + ``KAGGLE_KEY`` override
``$KAGGLE_CONFIG_DIR/kaggle.json`` (default ``~/.kaggle/kaggle.json``, or
``$XDG_CONFIG_HOME/kaggle/kaggle.json`` when ``~/.kaggle`` does not exist).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kagglekit.core.errors import KaggleError

log = logging.getLogger(__name__)

HOW_TO_GET_A_KEY = (
    "create an API token at https://www.kaggle.com/settings (API > Create New Token), save it as "
    "~/.kaggle/kaggle.json with `chmod 600`, or set KAGGLE_USERNAME and KAGGLE_KEY"
)


@dataclass(frozen=True)
class Credentials:
    username: str
    key: str = field(repr=False)  # never in a repr, a log line or an error message
    source: str = ""

    def redact(self, text: str) -> str:
        """``text`` with the key replaced, for anything that might echo a request back."""
        return text.replace(self.key, "***") if self.key else text


#: The values of KAGGLE_API_ENVIRONMENT, as ``kagglesdk.kaggle_env.get_env`` names them (any case here).
ENVIRONMENTS = ("PROD", "LOCALHOST", "ADMIN", "STAGING", "QA", "TEST")
#: Moves ``KAGGLE_API_ENVIRONMENT=TEST`` off kagglesdk's fixed http://localhost:7777, which has no setting.
LOCAL_PORT = "KAGGLEKIT_LOCAL_KAGGLE_PORT"


def api_environment(environ=os.environ):
    """The ``KaggleEnv`` that KAGGLE_API_ENVIRONMENT names (default PROD, kaggle.com).

    ``kagglesdk`` itself accepts only upper case and fails with a bare Exception on anything else.
    """
    from kagglesdk.kaggle_env import KaggleEnv

    value = environ.get("KAGGLE_API_ENVIRONMENT", "").strip()
    name = value.upper() or "PROD"
    if name not in ENVIRONMENTS:
        raise KaggleError(f"KAGGLE_API_ENVIRONMENT={value!r} is not one of {', '.join(ENVIRONMENTS)} (any case); "
                          "unset it to use kaggle.com, or set TEST for a local service on port 7777 (another "
                          f"port: {LOCAL_PORT})")
    return KaggleEnv.LOCAL if name == "LOCALHOST" else KaggleEnv[name]


def api_endpoint(environ=os.environ) -> str:
    """The Kaggle API's address: the one KAGGLE_API_ENVIRONMENT names, or with TEST a local service on the port
    ``KAGGLEKIT_LOCAL_KAGGLE_PORT`` gives (``kagglekit serve --port``)."""
    from kagglesdk.kaggle_env import KaggleEnv, get_endpoint

    env = api_environment(environ)
    value = environ.get(LOCAL_PORT, "").strip()
    if env is not KaggleEnv.TEST or not value:
        return get_endpoint(env)
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 < int(value) < 65536:
        raise KaggleError(f"{LOCAL_PORT}={value!r} is not a port number (1 to 65535): set it to the port that "
                          "`kagglekit serve` listens on, or unset it for 7777")
    return f"http://localhost:{int(value)}"


def config_dir(environ=os.environ) -> Path:
    if environ.get("KAGGLE_CONFIG_DIR"):
        return Path(environ["KAGGLE_CONFIG_DIR"])
    home = Path(os.path.expanduser("~"))
    legacy = home / ".kaggle"
    if legacy.exists():
        return legacy
    return Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"


def load_credentials(environ=os.environ) -> Credentials:
    """The username and key to use, or a KaggleError saying where they were looked for."""
    path = config_dir(environ) / "kaggle.json"
    username = key = None
    source = ""
    if path.is_file():
        _warn_if_readable_by_others(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as exc:
            raise KaggleError(f"{path}: not readable JSON ({type(exc).__name__}); {HOW_TO_GET_A_KEY}") from None
        if isinstance(data, dict):
            username, key, source = data.get("username"), data.get("key"), str(path)
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        username, key, source = environ["KAGGLE_USERNAME"], environ["KAGGLE_KEY"], "KAGGLE_USERNAME/KAGGLE_KEY"
    if not username or not key:
        raise KaggleError(
            f"no Kaggle credentials: {path} is missing or incomplete and KAGGLE_USERNAME/KAGGLE_KEY "
            f"are not both set; {HOW_TO_GET_A_KEY}"
        )
    return Credentials(str(username), str(key), source)


def _warn_if_readable_by_others(path: Path) -> None:
    if os.name == "nt":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s is readable by other users on this machine; run `chmod 600 %s`", path, path)
