"""Peak memory as long commands print it and metrics.json keeps it: this process's, and a child's only when asked."""

import subprocess
import sys

from kagglekit.core.memory import peak_memory_gib, peak_memory_line


def test_peak_memory_is_this_process_and_a_child_only_when_asked():
    own = peak_memory_gib()
    assert set(own) == {"peak_memory_gib"} and 0.01 < own["peak_memory_gib"] < 64
    subprocess.run([sys.executable, "-c", "block = b'x' * (400 * 2**20)"], check=True)  # 400 MiB written to
    assert peak_memory_gib(children=True)["peak_child_memory_gib"] >= 0.39
    assert "largest child process" in peak_memory_line(children=True)
    assert peak_memory_line().startswith("peak memory ") and "child" not in peak_memory_line()
