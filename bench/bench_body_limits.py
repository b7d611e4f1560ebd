"""Memory of a server flooded with big bodies: 8 clients at once each send a 50 MB body without an API key.

    python bench/bench_body_limits.py              # 8 clients x 50 MB
    python bench/bench_body_limits.py --clients 16 --mb 100

Starts one real server process on 127.0.0.1 and reads its peak resident memory (VmHWM) from /proc before
and after. Each client sends the whole body over a raw socket, as a careless or hostile client would, and
reads the status the server answered. The key is checked on the headers, so the bodies must be discarded
unread: the peak should stay near the idle server's.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import ServerProcess, write_config  # noqa: E402

CHUNK = b" " * (1 << 20)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def flood(port: int, mb: int, statuses: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = (f"POST /api/v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {mb << 20}\r\n\r\n").encode()
        sock.sendall(head)
        try:
            for _ in range(mb):
                sock.sendall(CHUNK)
        except OSError:
            pass  # the server may stop reading once it has answered
        sock.settimeout(10)
        try:
            statuses.append(sock.recv(64).split(b"\r\n", 1)[0].decode("latin-1"))
        except OSError as exc:
            statuses.append(f"no answer ({exc})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg"
        write_config(cfg)
        with ServerProcess(cfg) as srv:
            assert srv.proc is not None
            idle = peak_rss_mb(srv.proc.pid)
            statuses: list[str] = []
            started = time.perf_counter()
            threads = [threading.Thread(target=flood, args=(srv.port, args.mb, statuses)) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            peak = peak_rss_mb(srv.proc.pid)
    print(f"{args.clients} clients x {args.mb} MB without a key in {elapsed:.1f} s")
    print(f"server peak RSS: {idle:.0f} MB idle -> {peak:.0f} MB after (+{peak - idle:.0f} MB)")
    print("answers:", ", ".join(sorted(set(statuses))))


if __name__ == "__main__":
    main()
