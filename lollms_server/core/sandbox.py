"""Run untrusted Python code in a separate, limited process (used by code-running personalities).

What is enforced, and where:
- **time**: a wall-clock timeout (the process group is killed), plus RLIMIT_CPU (POSIX);
- **memory**: RLIMIT_AS caps the address space (POSIX; on macOS the kernel may ignore it);
- **files**: a fresh empty temporary working folder, deleted afterwards; RLIMIT_FSIZE caps every file
  written; RLIMIT_NOFILE caps open files; an audit hook inside the child refuses writes outside that folder,
  reads outside it and outside Python's own installation, and process creation;
- **network**: a new, empty network namespace (``unshare --net``, Linux) when the kernel allows it; the
  audit hook refuses socket creation in any case, and a sandbox that needs network isolation refuses to
  run when no namespace can be made (``require_network_namespace``);
- **environment**: the child gets an empty environment (no API keys, no tokens), ``python -I`` (isolated
  mode: no user site, no PYTHON* variables).
An audit hook is not a security boundary against determined code (ctypes is refused, but native
extensions could work around it): run the server as an unprivileged user, and keep code-running
personalities disabled unless the machine is disposable. Windows has no resource limits here: the sandbox
refuses to run there.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_CHILD_GUARD = r'''
import os, sys
_ROOT = (os.path.realpath(os.getcwd()),)
_PYTHON = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)})
_DENY = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
         "pty.spawn", "os.kill", "os.killpg", "os.chroot", "os.symlink", "os.link"}
_WRITES = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime"}
_READS = {"os.listdir", "os.scandir"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
def _inside(path, roots):
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError, OSError):  # a path that cannot be resolved counts as outside: refused
        return False
    return any(real == r or real.startswith(r + os.sep) for r in roots)
def _hook(event, args):
    if event in _DENY or event.startswith(("socket.", "ctypes.", "winreg.")):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if not isinstance(path, (str, bytes, os.PathLike)):
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
        if not _inside(path, _ROOT if writing else _ROOT + _PYTHON):
            raise PermissionError(f"sandbox: {'writing' if writing else 'reading'} {path!r} is not allowed (only the work folder)")
    elif event in _WRITES or event in _READS:
        path = args[0] if args else None
        if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path, _ROOT if event in _WRITES else _ROOT + _PYTHON):
            raise PermissionError(f"sandbox: {event} {path!r} is not allowed (only the work folder)")
sys.addaudithook(_hook)
del _hook
'''


@dataclass(frozen=True)
class SandboxLimits:
    timeout: float = 10.0  # wall-clock seconds
    cpu_seconds: int = 10
    memory_mb: int = 256
    max_file_mb: int = 10
    max_open_files: int = 64
    max_output_chars: int = 20000
    require_network_namespace: bool = True


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None  # None when killed on timeout
    stdout: str
    stderr: str
    timed_out: bool
    network_isolated: bool
    files: list[str]  # files the code left in its work folder


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot be set up on this machine."""


@functools.lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...] | None:
    """The command prefix that starts a process in a new empty network namespace, or None when impossible."""
    if not sys.platform.startswith("linux"):
        return None
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ((unshare, "--net"), (unshare, "--user", "--map-root-user", "--net")):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


def _limit(limits: SandboxLimits):  # type: ignore[no-untyped-def]
    def apply() -> None:  # runs in the child between fork and exec (POSIX only)
        import resource

        os.setsid()
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb * mb, limits.max_file_mb * mb))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        except (ValueError, OSError):
            if sys.platform.startswith("linux"):
                raise
            # macOS refuses address-space limits: the memory cap is not enforced there (see module doc)

    return apply


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters cut)"


def run_python_sync(code: str, limits: SandboxLimits) -> SandboxResult:
    """Blocking: run ``code`` with ``python -I`` in a limited child process and collect its output."""
    if os.name != "posix":
        raise SandboxUnavailable("the code sandbox needs POSIX resource limits; it does not run on Windows")
    prefix = network_namespace_prefix()
    if prefix is None and limits.require_network_namespace:
        raise SandboxUnavailable("no network namespace can be created here (needs Linux with unshare and user "
                                 "namespaces); refusing to run code with network access")
    with tempfile.TemporaryDirectory(prefix="lollms_sandbox_") as work:
        script = Path(work) / "main.py"
        script.write_text(code, encoding="utf-8")
        guard = _CHILD_GUARD + "\nimport runpy\nrunpy.run_path('main.py', run_name='__main__')\n"
        argv = [*(prefix or ()), sys.executable, "-I", "-S", "-c", guard]
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
        proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=_limit(limits))  # noqa: PLW1509 - limits must apply before exec
        timed_out = False
        try:
            out, err = proc.communicate(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: no child survives
            out, err = proc.communicate()
        files = sorted(str(p.relative_to(work)) for p in Path(work).rglob("*") if p.is_file() and p != script)
    return SandboxResult(
        exit_code=None if timed_out else proc.returncode,
        stdout=_clip(out.decode("utf-8", errors="replace"), limits.max_output_chars),
        stderr=_clip(err.decode("utf-8", errors="replace"), limits.max_output_chars),
        timed_out=timed_out, network_isolated=prefix is not None, files=files,
    )


async def run_python(code: str, limits: SandboxLimits) -> SandboxResult:
    """``run_python_sync`` off the event loop."""
    return await asyncio.to_thread(run_python_sync, code, limits)
