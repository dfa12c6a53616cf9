"""A real local HTTP server speaking enough of the Hugging Face Hub API for `datasets.load_dataset` to load rows."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

Rows = list[dict[str, Any]]
Repos = dict[str, dict[str, dict[str, Rows]]]  # repo id -> config name -> split -> rows


def parquet(rows: Rows) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


def card(configs: dict[str, dict[str, Rows]]) -> bytes:
    """A dataset card whose YAML `configs:` names each config's parquet file per split, as the Hub's own cards do."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {name}/{split}-*"]
    return "\n".join([*lines, "---", "", "A dataset served by the test Hub.", ""]).encode()


def repo_files(configs: dict[str, dict[str, Rows]]) -> dict[str, bytes]:
    files = {"README.md": card(configs)}
    for name, splits in configs.items():
        for split, rows in splits.items():
            files[f"{name}/{split}-00000-of-00001.parquet"] = parquet(rows)
    return files


class FakeHub:
    """Serves `repos` as dataset repositories; a request whose path starts with a key of `errors` gets that status."""

    def __init__(self, repos: Repos, *, errors: dict[str, int] | None = None) -> None:
        self.errors = errors or {}
        self.files = {repo: repo_files(configs) for repo, configs in repos.items()}
        self.sha = {
            repo: hashlib.sha1(repo.encode() + b"".join(sorted(files.values()))).hexdigest()
            for repo, files in self.files.items()
        }
        self.requests: list[str] = []  # "METHOD /path?query", in order
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.endpoint = ""

    def __enter__(self) -> FakeHub:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def environ(self, home: Path, **extra: str) -> dict[str, str]:
        """The environment of a child whose Hugging Face libraries talk only to this server; caches go in `home`."""
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HF_", "OPENAI_", "RLM_TUI_")) and "proxy" not in k.lower()
        }
        # datasets also asks the dataset viewer at datasets-server.<host>; the proxy keeps that lookup here too
        environ.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(home),
            HF_HUB_DISABLE_TELEMETRY="1",
            HTTP_PROXY=self.endpoint,
            NO_PROXY="127.0.0.1",
        )
        environ.update(extra)  # last, so that a test can point the libraries elsewhere
        return environ

    async def _start(self) -> int:
        app = web.Application(middlewares=[self._record])
        repo = "/{namespace}/{name}"
        app.router.add_route("*", "/datasets" + repo + "/resolve/{revision}/{path:.+}", self._resolve)
        app.router.add_get("/api/datasets" + repo + "/revision/{revision}", self._info)
        app.router.add_get("/api/datasets" + repo + "/tree/{revision}", self._tree)
        app.router.add_get("/api/datasets" + repo + "/tree/{revision}/{path:.*}", self._tree)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    @web.middleware
    async def _record(self, request: web.Request, handler) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        for prefix, status in self.errors.items():
            if request.path.startswith(prefix):
                return web.json_response({"error": f"the test Hub answers {status}"}, status=status)
        return await handler(request)

    def _repo(self, request: web.Request) -> str:
        """The repo id of the request, or an error the Hub would give for an unknown repo or revision."""
        repo = f"{request.match_info['namespace']}/{request.match_info['name']}"
        if repo not in self.files:
            raise _not_found("RepoNotFound", "Repository not found")
        if request.match_info.get("revision", "main") not in ("main", self.sha[repo]):
            raise _not_found("RevisionNotFound", "Invalid rev id")
        return repo

    def _entry(self, repo: str, path: str) -> dict[str, Any]:
        data = self.files[repo].get(path)
        if data is None:
            return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
        return {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": path}

    async def _unknown(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "not served by the test Hub"}, status=404)

    async def _resolve(self, request: web.Request) -> web.Response:
        repo, path = self._repo(request), request.match_info["path"]
        if path not in self.files[repo]:
            raise _not_found("EntryNotFound", f"{path} does not exist")
        data = self.files[repo][path]
        headers = {
            "X-Repo-Commit": self.sha[repo],
            "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
            "Accept-Ranges": "bytes",
        }
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(data))})
        if "Range" in request.headers:  # streaming reads the parquet files in ranges
            start, stop, _ = request.http_range.indices(len(data))
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            return web.Response(status=206, body=data[start:stop], headers=headers)
        return web.Response(body=data, headers=headers)

    async def _info(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        return web.json_response(
            {
                "id": repo,
                "sha": self.sha[repo],
                "private": False,
                "gated": False,
                "disabled": False,
                "lastModified": "2025-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": path} for path in self.files[repo]],
            }
        )

    async def _tree(self, request: web.Request) -> web.Response:
        """The files and folders under a path: its children, or everything below it with `recursive`."""
        repo = self._repo(request)
        base = request.match_info.get("path", "").strip("/")
        below = [p[len(base) + 1 :] if base else p for p in self.files[repo] if not base or p.startswith(base + "/")]
        if base and not below:
            raise _not_found("EntryNotFound", f"{base} does not exist")
        recursive = request.query.get("recursive", "").lower() in ("1", "true")
        found = set()
        for rest in below:
            parts = rest.split("/")
            found.update(
                "/".join(filter(None, [base, *parts[:depth]])) for depth in range(1, len(parts) + 1 if recursive else 2)
            )
        return web.json_response([self._entry(repo, path) for path in sorted(found)])


def _not_found(code: str, message: str) -> web.HTTPNotFound:
    """A 404 the way the Hub sends it: huggingface_hub tells the kinds apart by X-Error-Code."""
    return web.HTTPNotFound(
        headers={"X-Error-Code": code, "X-Error-Message": message},
        text=json.dumps({"error": message}),
        content_type="application/json",
    )


LOAD = """
import dataclasses, json, sys
from rlm_tui.env import load_environment
out = [[dataclasses.asdict(e) for e in load_environment(name, args).examples(n, seed)]
       for name, args, n, seed in json.loads(sys.argv[1])]
print(json.dumps(out))
"""


def load_examples(
    hub: FakeHub, home: Path, jobs: list[tuple[str, dict[str, str], int, int]], **extra: str
) -> list[list[dict[str, Any]]]:
    """Each job's (environment, env_args, n, seed) examples, loaded in one child process from `hub`."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, json.dumps(jobs)],
        env=hub.environ(home, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def rlm_tui(hub: FakeHub, home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "rlm-tui"), *args],
        cwd=home,
        env=hub.environ(home, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def rlm_tui_without_datasets(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """The CLI in a Python whose site-packages is this one's minus `datasets`, as if it had never been installed."""
    site = home / "site-packages"
    site.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith("datasets"):
            (site / entry.name).symlink_to(entry)
    code = f"import site, sys; site.addsitedir({str(site)!r}); from rlm_tui.cli import main; sys.exit(main())"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_", "PYTHON"))}
    return subprocess.run(
        [sys.executable, "-S", "-c", code, *args],
        cwd=home,
        env={**environ, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )
