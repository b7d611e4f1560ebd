"""CPU time a server process used so far, for the benchmarks (Linux ``/proc``; psutil elsewhere).

- ``cpu_seconds``: user + system time of the whole process, dead threads included, counted in clock ticks
  (10 ms): right for start-up or long runs.
- ``cpu_precise``: the scheduler's nanosecond run time of the process's live threads: right for a few hundred
  requests of a fraction of a millisecond each, where 10 ms ticks move a ratio by several percent. Threads
  that ended between two readings are not counted (the servers measured keep theirs).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_precise(pid: int) -> float:
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return cpu_seconds(pid)
    for task in tasks:
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9
