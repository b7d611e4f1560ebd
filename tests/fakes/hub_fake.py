"""A model hub on 127.0.0.1 speaking the Hugging Face file protocol that `lollms-server models pull` uses.

- ``GET /api/models/{owner}/{name}/tree/{revision}?recursive=true``: the file list (``type``, ``path``, ``size``,
  git blob ``oid``; large files also ``lfs: {oid: <sha256>, size, pointerSize}``), paginated with a
  ``Link: <...>; rel="next"`` header like the real hub.
- ``GET /{owner}/{name}/resolve/{revision}/{path}``: small files directly (``ETag`` = git blob id); large
  files through a 302 to a CDN-like URL, with ``X-Linked-Etag`` (the SHA-256), ``X-Linked-Size`` and
  ``X-Repo-Commit``. The CDN answers ``Range: bytes=N-`` with 206 and ``Content-Range``.
Behaviour knobs: ``corrupt`` (paths served with wrong bytes), ``cut_after`` (bytes sent before the
connection breaks, once per path).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from fakes.base import FakeServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".gguf", ".onnx", ".safetensors", ".bin")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()  # noqa: S324 - git object id


class HubFake(FakeServer):
    page_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[str, dict[str, bytes]] = {}
        self.corrupt: set[str] = set()
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before the connection breaks (once)

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.repos[repo_id] = files

    @staticmethod
    def is_lfs(path: str, data: bytes) -> bool:
        return path.endswith(LFS_SUFFIXES) or len(data) > 10_000

    def routes(self) -> list[Route]:
        return [
            Route("/api/models/{owner}/{name}/tree/{revision}", self.tree),
            Route("/{owner}/{name}/resolve/{revision}/{path:path}", self.resolve),
            Route("/cdn/{sha256}/{path:path}", self.cdn),
        ]

    async def tree(self, request: Request) -> Response:
        await self.record(request)
        repo = self.repos.get(f"{request.path_params['owner']}/{request.path_params['name']}")
        if repo is None:
            return JSONResponse({"error": "Repository not found"}, status_code=404, headers={"X-Error-Code": "RepoNotFound"})
        entries = []
        for path, data in sorted(repo.items()):
            entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
            if self.is_lfs(path, data):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                entry["size"] = len(data)
            entries.append(entry)
        folders = sorted({p.rsplit("/", 1)[0] for p in repo if "/" in p})
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in folders]
        start = int(request.query_params.get("cursor", "0"))
        page = entries[start:start + self.page_size]
        headers = {}
        if start + self.page_size < len(entries):
            nxt = request.url.include_query_params(cursor=str(start + self.page_size))
            headers["Link"] = f'<{nxt}>; rel="next"'
        return JSONResponse(page, headers=headers)

    async def resolve(self, request: Request) -> Response:
        await self.record(request)
        repo = self.repos.get(f"{request.path_params['owner']}/{request.path_params['name']}", {})
        path = request.path_params["path"]
        if path not in repo:
            return JSONResponse({"error": "Entry not found"}, status_code=404, headers={"X-Error-Code": "EntryNotFound"})
        data = repo[path]
        common = {"X-Repo-Commit": COMMIT}
        if self.is_lfs(path, data):
            sha = hashlib.sha256(data).hexdigest()
            return RedirectResponse(f"/cdn/{sha}/{path}", status_code=302, headers={
                **common, "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)), "ETag": f'"{git_blob_id(data)}"'})
        return Response(self._served(path, data), headers={**common, "ETag": f'"{git_blob_id(data)}"'})

    def _served(self, path: str, data: bytes) -> bytes:
        return bytes(b ^ 0xFF for b in data) if path in self.corrupt else data

    async def cdn(self, request: Request) -> Response:
        rec = await self.record(request)
        sha, path = request.path_params["sha256"], request.path_params["path"]
        data = next((d for r in self.repos.values() for p, d in r.items() if p == path and hashlib.sha256(d).hexdigest() == sha), None)
        if data is None:
            return Response(status_code=404)
        data = self._served(path, data)
        start = 0
        rng = rec.headers.get("range", "")
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        cut = self.cut_after.pop(path, None)

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            for i in range(0, len(body), 4096):
                piece = body[i:i + 4096]
                if cut is not None and sent + len(piece) > cut:
                    yield piece[:cut - sent]
                    raise ConnectionResetError("the fake hub drops the connection")
                sent += len(piece)
                yield piece

        headers = {"Content-Length": str(len(body)), "ETag": f'"{sha}"', "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return StreamingResponse(chunks(), status_code=206 if start else 200, headers=headers,
                                 media_type="application/octet-stream")
