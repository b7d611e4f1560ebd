"""Download a model repository from a Hugging Face style hub into the models folder, when the operator asks.

Never called at request time: only by ``lollms-server models pull`` and the installer menu. The hub protocol:
``GET {endpoint}/api/models/{repo}/tree/{revision}?recursive=true`` lists the files (path, size, git blob
``oid``, and for large files ``lfs.oid`` = SHA-256); ``GET {endpoint}/{repo}/resolve/{revision}/{path}``
serves a file (large ones through a redirect), with ``Range: bytes=N-`` for resuming. Every file is written
to ``<name>.part`` first, resumed from there after an interruption, checked against its SHA-256 (large
files) or git blob SHA-1 (small files) and its size, and only then moved into place.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:  # imported by hub_client(): `lollms-server serve` parses its arguments without loading httpx
    import httpx

DEFAULT_ENDPOINT = "https://huggingface.co"
KINDS: dict[str, str] = {  # kind -> sub-folder of models_folder
    "gguf": "gguf", "diffusers": "diffusers_models", "ttv": "ttv", "ttm": "ttm", "ttt": "ttt", "stt": "stt", "tts": "tts",
}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CHUNK = 1 << 20
Progress = Callable[[str, int, int], None]  # (file, bytes done, bytes total)


class PullError(RuntimeError):
    """A download that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    path: str  # inside the repository, "/" separated
    size: int
    sha256: str | None  # large (LFS) files
    git_oid: str | None  # small files: git blob SHA-1


@dataclass(frozen=True)
class PullPlan:
    repo_id: str
    revision: str
    kind: str
    files: list[RemoteFile]
    target: Path  # file (flat kinds) or folder the files go to
    flat: bool  # gguf and tts files go directly into their kind folder

    def destination(self, f: RemoteFile) -> Path:
        return self.target / (PurePosixPath(f.path).name if self.flat else Path(*PurePosixPath(f.path).parts))


def _safe_parts(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and all(p not in ("", ".", "..") and "\\" not in p for p in parts)


def list_files(client: httpx.Client, repo_id: str, revision: str) -> list[RemoteFile]:
    url = f"/api/models/{repo_id}/tree/{quote(revision, safe='')}"
    files: list[RemoteFile] = []
    next_url: str | None = url
    params: dict[str, str] | None = {"recursive": "true"}
    while next_url:
        r = client.get(next_url, params=params)
        if r.status_code in (401, 403):
            raise PullError(f"{repo_id}: access refused ({r.status_code}); for a gated or private model set HF_TOKEN")
        if r.status_code == 404:
            raise PullError(f"{repo_id}@{revision}: no such model repository or revision on {client.base_url}")
        r.raise_for_status()
        for entry in r.json():
            if entry.get("type") != "file":
                continue
            if not _safe_parts(str(entry.get("path", ""))):
                raise PullError(f"the hub listed a file path that would leave the model folder: {entry.get('path')!r}")
            lfs = entry.get("lfs") or {}
            files.append(RemoteFile(str(entry["path"]), int(lfs.get("size") or entry.get("size") or 0),
                                    lfs.get("oid") or lfs.get("sha256"), None if lfs else entry.get("oid")))
        next_url = r.links.get("next", {}).get("url")  # paginated listings link to the next page
        params = None
    return files


def detect_kind(files: list[RemoteFile], config: dict[str, Any] | None = None) -> str:
    names = {PurePosixPath(f.path).name for f in files}
    if any(n.endswith(".gguf") for n in names):
        return "gguf"
    if "model_index.json" in names:
        return "diffusers"
    if any(n.endswith(".onnx") for n in names) and any(n.endswith(".onnx.json") for n in names):
        return "tts"
    if "model.bin" in names and any(n.startswith("vocabulary") or n == "tokenizer.json" for n in names) and "config.json" in names:
        return "stt"  # a CTranslate2 (faster-whisper) model
    architectures = " ".join((config or {}).get("architectures") or [])
    if "Musicgen" in architectures:
        return "ttm"
    if "config.json" in names:
        return "ttt"
    raise PullError("cannot tell what kind of model this is; pass --kind " + "|".join(KINDS))


def select(files: list[RemoteFile], include: list[str], exclude: list[str]) -> list[RemoteFile]:
    chosen = [f for f in files if (not include or any(fnmatch.fnmatch(f.path, p) for p in include))
              and not any(fnmatch.fnmatch(f.path, p) for p in exclude)]
    if not chosen:
        raise PullError("no file of the repository matches --include/--exclude")
    return chosen


def make_plan(client: httpx.Client, repo_id: str, models_dir: Path, *, revision: str = "main", kind: str = "auto",
              include: list[str] | None = None, exclude: list[str] | None = None, name: str | None = None) -> PullPlan:
    if not REPO_ID.match(repo_id):
        raise PullError(f"'{repo_id}' is not a hub model id (owner/name)")
    files = select(list_files(client, repo_id, revision), include or [], exclude or [])
    if kind == "auto":
        config = None
        if any(f.path == "config.json" for f in files) and not any(PurePosixPath(f.path).name == "model.bin" for f in files):
            r = client.get(f"/{repo_id}/resolve/{quote(revision, safe='')}/config.json", follow_redirects=True)
            config = r.json() if r.status_code == 200 else None
        kind = detect_kind(files, config)
    if kind not in KINDS:
        raise PullError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    flat = kind in ("gguf", "tts")
    folder_name = name or repo_id.split("/")[1]
    if not _safe_parts(folder_name) or "/" in folder_name:
        raise PullError(f"--name '{folder_name}' must be a plain folder name")
    target = models_dir / KINDS[kind] if flat else models_dir / KINDS[kind] / folder_name
    if flat:
        clashes = sorted({PurePosixPath(f.path).name for f in files if sum(PurePosixPath(g.path).name == PurePosixPath(f.path).name for g in files) > 1})
        if clashes:
            raise PullError(f"several files named {', '.join(clashes)}: choose one with --include")
    return PullPlan(repo_id, revision, kind, files, target, flat)


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 - git's object id, not security
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, f: RemoteFile) -> None:
    """Raise PullError unless ``path`` has the size and checksum the hub announced."""
    size = path.stat().st_size
    if f.size and size != f.size:
        raise PullError(f"{f.path}: got {size} bytes, the hub announced {f.size}")
    if f.sha256:
        got = _sha256(path)
        if got != f.sha256:
            raise PullError(f"{f.path}: SHA-256 {got} does not match the hub's {f.sha256}")
    elif f.git_oid:
        got = _git_blob_sha1(path)
        if got != f.git_oid:
            raise PullError(f"{f.path}: git blob id {got} does not match the hub's {f.git_oid}")


def fetch(client: httpx.Client, plan: PullPlan, f: RemoteFile, progress: Progress) -> Path:
    """Download one file (resuming its .part file), verify it, move it into place; skip it when already there."""
    dest = plan.destination(f)
    if dest.exists():
        try:
            verify(dest, f)
            progress(f.path, f.size, f.size)
            return dest
        except PullError:
            pass  # a different or damaged file: download it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    if f.size and done > f.size:
        part.unlink()
        done = 0
    url = f"/{plan.repo_id}/resolve/{quote(plan.revision, safe='')}/{quote(f.path)}"
    headers = {"Range": f"bytes={done}-"} if done else {}
    with client.stream("GET", url, headers=headers, follow_redirects=True) as r:
        if r.status_code == 416 and done == f.size:
            pass  # the .part file is already complete
        elif r.status_code not in (200, 206):
            raise PullError(f"{f.path}: the hub answered {r.status_code}")
        else:
            mode = "ab" if r.status_code == 206 and done else "wb"
            done = done if mode == "ab" else 0
            with part.open(mode) as out:
                for block in r.iter_bytes(1 << 16):
                    out.write(block)
                    done += len(block)
                    progress(f.path, done, f.size)
    try:
        verify(part, f)
    except PullError:
        part.unlink(missing_ok=True)  # never resume from bytes that failed the check
        raise
    os.replace(part, dest)
    return dest


def hub_client(endpoint: str | None = None, token: str | None = None, timeout: float = 60.0) -> httpx.Client:
    base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    token = token or os.environ.get("HF_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    import httpx

    return httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(timeout, read=timeout))


def pull(client: httpx.Client, plan: PullPlan, progress: Progress) -> list[Path]:
    return [fetch(client, plan, f, progress) for f in plan.files]
