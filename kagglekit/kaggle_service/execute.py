"""Run one pushed notebook as a Kaggle session does: ``python execute.py NOTEBOOK EXECUTED KERNEL_STDERR``.

Started by kernels.py as a script (not ``-m kagglekit...``): the session must not import the kagglekit of
the service, only what the notebook installs itself. Every output is printed the moment the kernel sends
it, so the session log (this process's output) holds everything up to the moment a run fails or is
stopped at its time limit (SIGTERM: nbclient then shuts the notebook's kernel down). The kernel
process's own chatter goes to KERNEL_STDERR, not the log. Exits 1 when a cell raises or the run stops.
"""

import re
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


class EchoingClient(NotebookClient):
    """Prints each output as it arrives."""

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None:
            print(output_text(out), end="", flush=True)
        return out


def main(source: str, executed: str, kernel_stderr: str) -> int:
    notebook = nbformat.read(source, as_version=4)
    client = EchoingClient(notebook, kernel_name="python3", timeout=None,
                           on_cell_start=lambda cell_index, **_: print(f"--- cell {cell_index}", flush=True))
    with open(kernel_stderr, "ab") as stderr:
        try:
            client.execute(stderr=stderr)
            return 0
        except CellExecutionError as exc:
            print(f"notebook failed: {exc.ename}: {exc.evalue}", flush=True)
            return 1
        except Exception as exc:  # noqa: BLE001 (a dead or stopped kernel: one line, not nbclient's traceback)
            print(f"notebook stopped: {type(exc).__name__}: {exc}", flush=True)
            return 1
        finally:
            nbformat.write(notebook, executed)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
