"""A Hugging Face Hub stand-in on 127.0.0.1, for the model role's hf source (hub and git_lfs).

  python tests/tools/fake_hf.py --port 15993 --token-file TOKEN --repo slm-test/tiny=DIR [--log LOG]

Each --repo directory becomes a git repository (one commit, fixed author and date, so its sha
is stable) under a private temporary root, served three ways:

* the model-info API: GET /api/models/<repo>/revision/<rev> (sha, siblings), as
  slm.edge.hf_model_info and huggingface_hub's repo_info ask it;
* file downloads: HEAD and GET /<repo>/resolve/<rev>/<path> with X-Repo-Commit, ETag,
  Content-Length and Range, as huggingface_hub's hf_hub_download uses them;
* git over smart HTTP: /<repo>/info/refs and /<repo>/git-upload-pack through
  `git http-backend`, as `git clone <endpoint>/<repo>` uses them.

Every request must carry the token (API and downloads: `Authorization: Bearer <token>`;
git: HTTP Basic with the token as password, which makes git ask its credential helper);
without it the answer is 401. The token is read from a file, never from the command line.
Each request is logged as one JSON line to --log (method, path, whether it was authorized,
whether the token appeared in the URL), so a test can prove the token was sent, and only in
a header.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "slm.edge tests",
    "GIT_AUTHOR_EMAIL": "tests@slm-edge.invalid",
    "GIT_COMMITTER_NAME": "slm.edge tests",
    "GIT_COMMITTER_EMAIL": "tests@slm-edge.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
}


def git(*args: str, cwd: Path | None = None, data: bytes | None = None) -> bytes:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True, env=env).stdout


def make_repo(root: Path, name: str, source: Path) -> str:
    """A bare repository <root>/<name> holding every file of `source` in one commit; its sha."""
    bare = root / name
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(bare))
    work = Path(tempfile.mkdtemp(prefix="fake-hf-work-"))
    git("init", "-q", "-b", "main", str(work))
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = work / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", f"{name} for the model role's tests", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    git("config", "http.receivepack", "false", cwd=bare)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
    return git("rev-parse", "HEAD", cwd=bare).decode().strip()


class Hub:
    def __init__(self, root: Path, repos: dict[str, str], token: str, log: Path | None):
        self.root, self.repos, self.token, self.log = root, repos, token, log
        self.lock = threading.Lock()

    def files(self, repo: str) -> list[str]:
        return git("ls-tree", "-r", "--name-only", "HEAD", cwd=self.root / repo).decode().split("\n")[:-1]

    def blob(self, repo: str, path: str) -> bytes:
        return git("cat-file", "blob", f"HEAD:{path}", cwd=self.root / repo)

    def record(self, entry: dict) -> None:
        if self.log:
            with self.lock, self.log.open("a") as out:
                out.write(json.dumps(entry) + "\n")


def handler(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            return

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth == f"Bearer {hub.token}":
                return True
            if auth.startswith("Basic "):
                try:
                    user_pass = base64.b64decode(auth[6:]).decode()
                except ValueError:
                    return False
                return user_pass.partition(":")[2] == hub.token
            return False

        def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _route(self, head: bool = False) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            authorized = self._authorized()
            hub.record(
                {
                    "method": self.command,
                    "path": url.path,
                    "authorized": authorized,
                    "token_in_url": hub.token in self.path,
                }
            )
            if not authorized:
                basic = "/info/refs" in path or path.endswith("/git-upload-pack")
                self._send(
                    401,
                    json.dumps({"error": "Invalid credentials in Authorization header"}).encode(),
                    {"WWW-Authenticate": 'Basic realm="fake-hf"'} if basic else {"Content-Type": "application/json"},
                    head,
                )
                return
            for repo in hub.repos:
                if path.startswith(f"/api/models/{repo}/revision/"):
                    return self._info(repo, head)
                if path.startswith(f"/{repo}/resolve/"):
                    return self._file(repo, path[len(f"/{repo}/resolve/") :].partition("/")[2], head)
                if path.startswith(f"/{repo}/info/refs") or path == f"/{repo}/git-upload-pack":
                    return self._git(url)
            self._send(404, b'{"error": "Repository not found"}', {"Content-Type": "application/json"}, head)

        def _info(self, repo: str, head: bool) -> None:
            body = {
                "id": repo,
                "modelId": repo,
                "sha": hub.repos[repo],
                "private": True,
                "gated": False,
                "siblings": [{"rfilename": f} for f in hub.files(repo)],
            }
            self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)

        def _file(self, repo: str, name: str, head: bool) -> None:
            if name not in hub.files(repo):
                self._send(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"}, head)
                return
            data = hub.blob(repo, name)
            headers = {
                "X-Repo-Commit": hub.repos[repo],
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and not head:
                start = int(ranged[6:].split("-")[0] or 0)
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                self._send(206, data[start:], headers)
                return
            if head:
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return
            self._send(200, data, headers)

        def _git(self, url: urllib.parse.SplitResult) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = dict(
                os.environ,
                GIT_PROJECT_ROOT=str(hub.root),
                GIT_HTTP_EXPORT_ALL="1",
                PATH_INFO=urllib.parse.unquote(url.path),
                QUERY_STRING=url.query,
                REQUEST_METHOD=self.command,
                CONTENT_TYPE=self.headers.get("Content-Type", ""),
                CONTENT_LENGTH=str(len(body)),
                REMOTE_USER="hf",
                HTTP_GIT_PROTOCOL=self.headers.get("Git-Protocol", ""),
            )
            out = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, check=False).stdout
            head, sep, payload = out.partition(b"\r\n\r\n")
            if not sep:
                head, sep, payload = out.partition(b"\n\n")
            status, headers = 200, {}
            for line in head.decode(errors="replace").splitlines():
                key, value = line.split(":", 1) if ":" in line else (line, "")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers[key] = value.strip()
            headers.pop("Content-Length", None)
            self._send(status, payload, headers)

        def do_GET(self):
            self._route()

        def do_HEAD(self):
            self._route(head=True)

        def do_POST(self):
            self._route()

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--repo", action="append", default=[], help="ORG/NAME=DIRECTORY")
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="fake-hf-"))
    repos = {}
    for spec in args.repo:
        name, source = spec.split("=", 1)
        repos[name] = make_repo(root, name, Path(source))
    hub = Hub(root, repos, args.token_file.read_text().strip(), args.log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(hub))
    print(json.dumps({"listening": f"http://127.0.0.1:{args.port}", "repos": repos}), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
