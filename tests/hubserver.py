"""A stdlib fake Hugging Face Hub on 127.0.0.1, for driving the *real* ``huggingface_hub`` client in tests.

Implements the Hub endpoints huggingface_hub uses: resolve (HEAD/GET, Range), model info, tree (paginated),
refs, commits, paths-info, whoami, create/delete repo, validate-yaml, preupload, ndjson commit, LFS batch
upload + verify, tags and branches. Files ending in ``.safetensors`` (or over 1 MiB) are LFS files: their
ETag is the sha256, so the client names the cached blob after it. Fault knobs: tokens for private repos,
throttling, dropping the connection mid-file, corrupting bodies, malicious tree entries, HTTP errors n times on
a route (``fail``), hostile revisions resolved (``../../x``), a forged commit header, a forged tree body.

    python tests/hubserver.py --port 0 [--seed DIR=org/name ...]   # prints http://127.0.0.1:PORT
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["FakeHub"]

LFS_MIN = 1 << 20


@functools.lru_cache(maxsize=512)
def git_sha1(data: bytes) -> str:
    # memoized (bytes cache their hash): the real Hub stores digests, it does not rehash a file per request
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@functools.lru_cache(maxsize=512)
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_lfs(path: str, data: bytes) -> bool:
    return path.endswith(".safetensors") or len(data) >= LFS_MIN


@dataclass
class Repo:
    private: bool = False
    commits: dict = field(
        default_factory=dict
    )  # sha -> {"files": {path: bytes}, "parent", "message", "date"}
    branches: dict = field(default_factory=dict)  # name -> sha
    tags: dict = field(default_factory=dict)  # name -> sha


class FakeHub:
    """In-memory Hub. ``start()`` serves it on a background thread; ``endpoint`` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, page_size: int = 1000):
        self.host, self.port, self.page_size = host, port, page_size
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.cache_dir: Path | None = None
        self.reset()

    # ---- lifecycle
    def reset(self) -> None:
        with self._lock:
            self.repos: dict[str, Repo] = {}
            self.lfs_store: dict[str, bytes] = {}
            self.tokens: set[str] = set()
            self.throttle_bps: int | None = None
            self.latency_s: float = 0.0  # added to every request: a round trip to a distant Hub
            self.drop_after_bytes: int | None = None
            self.drop_count: int = 1
            self.corrupt: set[str] = set()
            self.extra_tree_entries: dict[str, list[dict]] = {}
            self.faults: list[dict] = []  # fail(): answer a route with an HTTP error n times
            self.hostile_revisions: bool = False  # resolve any unknown revision (even ../../x) to main
            self.commit_header: str | None = None  # send this X-Repo-Commit instead of the real commit
            self.tree_body: bytes | None = None  # send this body for every tree listing
            self.requests: list[tuple[str, str]] = []
            self._n = 0

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- repo manipulation (also used by the HTTP handlers)
    def create_repo(self, repo_id: str, *, private: bool = False, repo_type: str = "model") -> None:
        with self._lock:
            if repo_id not in self.repos:
                self.repos[repo_id] = Repo(private=private)
                self._commit(repo_id, {}, "main", "initial commit", ())

    def _commit(self, repo_id: str, files: dict[str, bytes], branch: str, message: str, delete) -> str:
        repo = self.repos[repo_id]
        parent = repo.branches.get(branch)
        base = dict(repo.commits[parent]["files"]) if parent else {}
        for p in delete:
            base = {k: v for k, v in base.items() if k != p and not k.startswith(p.rstrip("/") + "/")}
        base.update(files)
        self._n += 1
        sha = hashlib.sha1(f"{repo_id}:{branch}:{self._n}:{time.time_ns()}".encode()).hexdigest()
        repo.commits[sha] = {
            "files": base,
            "parent": parent,
            "message": message,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        }
        repo.branches[branch] = sha
        return sha

    def commit(self, repo_id: str, files, *, branch: str = "main", message: str = "commit", delete=()) -> str:
        if not isinstance(files, dict):
            root = Path(files)
            files = {
                p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            }
        with self._lock:
            self.create_repo(repo_id)
            return self._commit(repo_id, dict(files), branch, message, delete)

    def tag(self, repo_id: str, tag: str, revision: str = "main") -> None:
        with self._lock:
            self.repos[repo_id].tags[tag] = self.resolve_rev(repo_id, revision)

    def branch(self, repo_id: str, name: str, revision: str = "main") -> None:
        with self._lock:
            self.repos[repo_id].branches[name] = self.resolve_rev(repo_id, revision)

    def resolve_rev(self, repo_id: str, rev: str) -> str | None:
        repo = self.repos[repo_id]
        if rev in repo.branches:
            return repo.branches[rev]
        if rev in repo.tags:
            return repo.tags[rev]
        if rev in repo.commits:
            return rev
        if self.hostile_revisions and "main" in repo.branches:
            return repo.branches["main"]
        return None

    def fail(self, route: str, status: int = 500, times: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` requests whose path contains ``route`` (e.g. ``/tree/``, ``/resolve/``)
        with HTTP ``status`` (``times=-1``: always)."""
        with self._lock:
            self.faults.append({"route": route, "status": status, "times": times, "method": method})

    def _fault_for(self, method: str, path: str) -> int | None:
        with self._lock:
            for f in self.faults:
                if f["times"] != 0 and f["route"] in path and f["method"] in (None, method):
                    if f["times"] > 0:
                        f["times"] -= 1
                    return f["status"]
        return None

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        with self._lock:
            return dict(self.repos[repo_id].commits[self.resolve_rev(repo_id, revision)]["files"])

    def download_count(self, filename: str) -> int:
        return sum(
            1
            for m, p in self.requests
            if m == "GET" and "/resolve/" in p and p.split("?")[0].endswith(filename)
        )


def _entry(path: str, data: bytes) -> dict:
    e = {"type": "file", "oid": git_sha1(data), "size": len(data), "path": path}
    if is_lfs(path, data):
        e["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": 134}
    return e


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    fake: FakeHub

    def log_message(self, *args) -> None:  # quiet
        pass

    # ---- helpers
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self, status: int, body: bytes = b"", headers: dict | None = None, ctype: str = "application/json"
    ):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str, extra: dict | None = None):
        h = {"X-Error-Code": code, "X-Error-Message": message}
        h.update(extra or {})
        self._json(status, {"error": message}, h)

    def _authorized(self, repo: Repo) -> bool:
        if not repo.private:
            return True
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.fake.tokens

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if not self._authorized(repo):
            self._error(401, "RepoNotFound", "Invalid credentials in Authorization header")
            return None
        return repo

    def _rev(self, repo_id: str, rev: str) -> str | None:
        sha = self.fake.resolve_rev(repo_id, rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return sha

    def _record(self):
        with self.fake._lock:
            self.fake.requests.append((self.command, self.path))
        if self.fake.latency_s:
            time.sleep(self.fake.latency_s)

    # ---- verbs
    def do_HEAD(self):
        self._record()
        self._route()

    def do_GET(self):
        self._record()
        self._route()

    def do_POST(self):
        self._record()
        self._route(self._body())

    def do_PUT(self):
        self._record()
        self._route(self._body())

    def do_DELETE(self):
        self._record()
        self._route(self._body())

    def _route(self, body: bytes = b""):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p != ""]
        q = parse_qs(url.query)
        try:
            status = self.fake._fault_for(self.command, url.path)
            if status is not None:
                return self._error(status, "InjectedFault", f"injected HTTP {status}")
            if parts[:2] == ["api", "whoami-v2"]:
                return self._whoami()
            if parts[:2] == ["api", "validate-yaml"]:
                return self._json(200, {"errors": [], "warnings": []})
            if parts[:3] == ["api", "repos", "create"]:
                return self._create(json.loads(body or b"{}"))
            if parts[:3] == ["api", "repos", "delete"]:
                d = json.loads(body or b"{}")
                rid = f"{d.get('organization') or 'user'}/{d['name']}" if d.get("organization") else d["name"]
                self.fake.repos.pop(rid, None)
                return self._json(200, {})
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._api(f"{parts[2]}/{parts[3]}", parts[4:], q, body)
            if parts[:1] == ["lfs-upload"]:
                data = body
                if hashlib.sha256(data).hexdigest() != parts[1]:
                    return self._error(400, "BadRequest", "sha256 mismatch")
                self.fake.lfs_store[parts[1]] = data
                return self._json(200, {})
            if parts[:1] == ["lfs-verify"]:
                return self._json(200 if parts[1] in self.fake.lfs_store else 404, {})
            if (
                len(parts) >= 4
                and parts[1].endswith(".git")
                and parts[2:] == ["info", "lfs", "objects", "batch"][: len(parts) - 2]
            ):
                return self._lfs_batch(f"{parts[0]}/{parts[1][:-4]}", json.loads(body or b"{}"))
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            return self._error(404, "NotFound", f"no route for {self.command} {url.path}")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    # ---- endpoints
    def _whoami(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in self.fake.tokens:
            return self._json(
                200,
                {
                    "type": "user",
                    "name": "tester",
                    "fullname": "Test User",
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"role": "write"}},
                },
            )
        return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")

    def _create(self, d: dict):
        rid = f"{d['organization']}/{d['name']}" if d.get("organization") else d["name"]
        if "/" not in rid:
            rid = f"tester/{rid}"
        url = f"{self.fake.endpoint}/{rid}"
        with self.fake._lock:
            if rid in self.fake.repos:
                return self._json(409, {"error": "You already created this model repo", "url": url})
            self.fake.create_repo(rid, private=bool(d.get("private") or d.get("visibility") == "private"))
        return self._json(200, {"url": url, "name": rid})

    def _api(self, rid: str, rest: list[str], q: dict, body: bytes):
        repo = self._repo(rid)
        if repo is None:
            return
        op = rest[0] if rest else ""
        if op in ("", "revision"):
            rev = rest[1] if op == "revision" and len(rest) > 1 else "main"
            sha = self._rev(rid, rev)
            if sha is None:
                return
            files = repo.commits[sha]["files"]
            blobs = "blobs" in q and q["blobs"][0].lower() == "true"
            sib = []
            for p, data in sorted(files.items()):
                s = {"rfilename": p}
                if blobs:
                    e = _entry(p, data)
                    s.update(size=e["size"], blobId=e["oid"])
                    if "lfs" in e:
                        s["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 134}
                sib.append(s)
            return self._json(
                200,
                {
                    "id": rid,
                    "modelId": rid,
                    "sha": sha,
                    "private": repo.private,
                    "siblings": sib,
                    "tags": [],
                    "cardData": {},
                    "disabled": False,
                    "gated": False,
                    "lastModified": repo.commits[sha]["date"],
                    "downloads": 0,
                    "likes": 0,
                },
            )
        if op == "tree":
            sha = self._rev(rid, rest[1] if len(rest) > 1 else "main")
            if sha is None:
                return
            prefix = "/".join(rest[2:])
            files = repo.commits[sha]["files"]
            entries = [
                _entry(p, d) for p, d in sorted(files.items()) if not prefix or p.startswith(prefix + "/")
            ]
            entries += self.fake.extra_tree_entries.get(rid, [])
            if self.fake.tree_body is not None:
                return self._send(200, self.fake.tree_body)
            start = int(q.get("cursor", ["0"])[0])
            page = entries[start : start + self.fake.page_size]
            headers = {}
            if start + self.fake.page_size < len(entries):
                nq = dict(q)
                nq["cursor"] = [str(start + self.fake.page_size)]
                qs = "&".join(f"{k}={quote(v[0])}" for k, v in nq.items())
                headers["Link"] = f'<{self.fake.endpoint}{urlsplit(self.path).path}?{qs}>; rel="next"'
            return self._json(200, page, headers)
        if op == "refs":
            br = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo.branches.items()]
            tg = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()]
            return self._json(200, {"branches": br, "tags": tg, "converts": [], "pullRequests": []})
        if op == "commits":
            sha = self._rev(rid, rest[1] if len(rest) > 1 else "main")
            if sha is None:
                return
            out = []
            while sha:
                c = repo.commits[sha]
                out.append(
                    {
                        "id": sha,
                        "title": c["message"],
                        "message": c["message"],
                        "date": c["date"],
                        "authors": [{"user": "tester"}],
                    }
                )
                sha = c["parent"]
            return self._json(200, out)
        if op == "paths-info":
            sha = self._rev(rid, rest[1] if len(rest) > 1 else "main")
            if sha is None:
                return
            form = parse_qs(body.decode())
            files = repo.commits[sha]["files"]
            return self._json(200, [_entry(p, files[p]) for p in form.get("paths", []) if p in files])
        if op == "preupload":
            sha = self._rev(rid, rest[1] if len(rest) > 1 else "main")
            files = repo.commits[sha]["files"] if sha else {}
            out = []
            for f in json.loads(body or b"{}").get("files", []):
                size = int(f.get("size", 0))
                lfs = f["path"].endswith(".safetensors") or size >= LFS_MIN
                old = files.get(f["path"])
                oid = None if old is None else (hashlib.sha256(old).hexdigest() if lfs else git_sha1(old))
                out.append(
                    {
                        "path": f["path"],
                        "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": False,
                        "oid": oid,
                    }
                )
            return self._json(200, {"files": out, "commitOid": sha})
        if op == "commit":
            branch = rest[1] if len(rest) > 1 else "main"
            files, delete, message = {}, [], "commit"
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                k, v = item["key"], item["value"]
                if k == "header":
                    message = v.get("summary", message)
                elif k == "file":
                    files[v["path"]] = base64.b64decode(v["content"])
                elif k == "lfsFile":
                    if v["oid"] not in self.fake.lfs_store:
                        return self._error(422, "LfsMissing", f"LFS object {v['oid']} was not uploaded")
                    files[v["path"]] = self.fake.lfs_store[v["oid"]]
                elif k in ("deletedFile", "deletedFolder"):
                    delete.append(v["path"])
            with self.fake._lock:
                if branch not in repo.branches:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
                sha = self.fake._commit(rid, files, branch, message, delete)
            return self._json(
                200,
                {
                    "commitOid": sha,
                    "commitUrl": f"{self.fake.endpoint}/{rid}/commit/{sha}",
                    "pullRequestUrl": None,
                },
            )
        if op == "tag":
            d = json.loads(body or b"{}")
            sha = self._rev(rid, rest[1] if len(rest) > 1 else "main")
            if sha is None:
                return
            if d["tag"] in repo.tags:
                return self._error(409, "Conflict", f"tag {d['tag']} already exists")
            repo.tags[d["tag"]] = sha
            return self._json(200, {})
        if op == "branch":
            d = json.loads(body or b"{}")
            name = "/".join(rest[1:])
            if name in repo.branches:
                return self._error(409, "Conflict", f"branch {name} already exists")
            start = self.fake.resolve_rev(rid, d.get("startingPoint") or "main")
            repo.branches[name] = start
            return self._json(200, {})
        return self._error(404, "NotFound", f"unknown api {op}")

    def _lfs_batch(self, rid: str, d: dict):
        repo = self._repo(rid)
        if repo is None:
            return
        objs = []
        for o in d.get("objects", []):
            e = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in self.fake.lfs_store:
                e["actions"] = {
                    "upload": {"href": f"{self.fake.endpoint}/lfs-upload/{o['oid']}"},
                    "verify": {"href": f"{self.fake.endpoint}/lfs-verify/{o['oid']}"},
                }
            objs.append(e)
        return self._json(200, {"transfer": "basic", "objects": objs})

    def _resolve(self, rid: str, rev: str, path: str):
        repo = self._repo(rid)
        if repo is None:
            return
        sha = self._rev(rid, rev)
        if sha is None:
            return
        files = repo.commits[sha]["files"]
        if path not in files:
            return self._error(
                404, "EntryNotFound", f"{path} does not exist on {rev}", {"X-Repo-Commit": sha}
            )
        data = files[path]
        headers = {"X-Repo-Commit": self.fake.commit_header or sha, "Accept-Ranges": "bytes"}
        if is_lfs(path, data):
            digest = sha256(data)
            headers.update(
                {"ETag": f'"{digest}"', "X-Linked-Etag": f'"{digest}"', "X-Linked-Size": str(len(data))}
            )
        else:
            headers["ETag"] = f'"{git_sha1(data)}"'
        if path in self.fake.corrupt:
            data = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and self.command == "GET":
            start = int(rng[6:].split("-")[0] or 0)
        if self.command == "HEAD":
            return self._send(200, data, headers, "application/octet-stream")
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        drop = None
        with self.fake._lock:
            if (
                self.fake.drop_after_bytes is not None
                and self.fake.drop_count > 0
                and len(body) > self.fake.drop_after_bytes
            ):
                self.fake.drop_count -= 1
                drop = self.fake.drop_after_bytes
        sent, chunk = 0, 64 * 1024
        while sent < len(body):
            piece = body[sent : sent + chunk]
            if drop is not None and sent + len(piece) > drop:
                self.wfile.write(piece[: max(0, drop - sent)])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self.wfile.write(piece)
            sent += len(piece)
            if self.fake.throttle_bps:
                time.sleep(len(piece) / self.fake.throttle_bps)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="A fake Hugging Face Hub for offline tests.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument(
        "--seed", action="append", default=[], help="FOLDER=org/name[@tag]: commit a folder as a repo"
    )
    ap.add_argument("--token", action="append", default=[], help="a valid token")
    ap.add_argument(
        "--throttle-mbps", type=float, default=0, help="cap file bodies at this many MB/s (0: no cap)"
    )
    ap.add_argument(
        "--latency-ms", type=float, default=0, help="delay every request by this much (a round trip)"
    )
    args = ap.parse_args(argv)
    hub = FakeHub(args.host, args.port).start()
    hub.tokens.update(args.token)
    hub.throttle_bps = int(args.throttle_mbps * 1e6) or None
    hub.latency_s = args.latency_ms / 1e3
    for s in args.seed:
        folder, _, rid = s.partition("=")
        rid, _, tag = rid.partition("@")
        hub.commit(rid, folder)
        if tag:
            hub.tag(rid, tag)
    print(hub.endpoint, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
