"""Facts about the machine the server runs on (CPU cores usable by this process)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

_CPU_SYSFS = Path("/sys/devices/system/cpu")


def _usable_cpus() -> set[int]:
    getaffinity = getattr(os, "sched_getaffinity", None)  # Linux; absent on Windows and macOS
    if getaffinity is not None:
        return set(getaffinity(0))
    return set(range(os.cpu_count() or 1))


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads of one core count once).

    llama.cpp generates fastest with one thread per physical core; llama-cpp-python's own default
    (half the logical CPUs) leaves cores idle on machines without SMT.
    """
    cpus = _usable_cpus()
    groups: set[str] = set()
    for cpu in cpus:
        siblings = _CPU_SYSFS / f"cpu{cpu}" / "topology" / "thread_siblings_list"
        try:
            groups.add(siblings.read_text().strip())
        except OSError:
            groups.add(str(cpu))  # no topology information: count the CPU itself
    return max(1, len(groups) or len(cpus))
