"""Start-up cost of a large standard LOLLMS personality zoo (nested categories, real-world variants).

    PYTHONPATH=. venv/bin/python bench/bench_personalities.py [count]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lollms_zoo_fixture import write_lollms_zoo  # noqa: E402

from lollms_server.core.personalities import PersonalityManager  # noqa: E402


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "zoo"
        write_lollms_zoo(root, count)
        times = []
        for _ in range(5):
            pm = PersonalityManager([(root, "personal")], {}, entry_points=False)
            started = time.perf_counter()
            pm.discover()
            times.append(time.perf_counter() - started)
        assert len(pm.personalities) == count, pm.load_errors
        print(f"{count} personalities: discovery median {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
