"""Run one pushed notebook as a Kaggle session does: ``python execute.py NOTEBOOK EXECUTED``.

Started by kernels.py as a script (not ``-m kagglekit...``): the session must not import the kagglekit of
the service, only what the notebook installs itself. Every cell's output is printed as the cell ends,
so the session log (this process's output) holds everything up to the moment a run fails or is
killed for its time limit. Exits 1 when a cell raises; on SIGTERM it kills the notebook's kernel (which
runs in a process group of its own) and exits 124.
"""

import os
import re
import signal
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def output_text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return ANSI.sub("", "\n".join(output.traceback)) + "\n"
    text = output.get("data", {}).get("text/plain", "")
    return text + "\n" if text else ""


def main(source: str, executed: str) -> int:
    notebook = nbformat.read(source, as_version=4)

    def show(cell, cell_index, **_):
        print(f"--- cell {cell_index}", flush=True)
        print("".join(output_text(o) for o in cell.outputs), end="", flush=True)

    client = NotebookClient(notebook, kernel_name="python3", timeout=None, on_cell_executed=show)

    def stop(signum, frame):
        pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
        if pid:
            os.kill(pid, signal.SIGKILL)
        print("session stopped: time limit reached", flush=True)
        os._exit(124)

    signal.signal(signal.SIGTERM, stop)
    try:
        client.execute()
        return 0
    except CellExecutionError as exc:
        print(f"notebook failed: {exc.ename}: {exc.evalue}", flush=True)
        return 1
    finally:
        nbformat.write(notebook, executed)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
