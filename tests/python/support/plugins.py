"""Plugins for end-to-end tests: where `make plugins` put the built components, config files
that load them, the admin listing, and small loopback HTTP servers (JWKS, black holes)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from pathlib import Path

from .server import REPO, SluiceServer

DIST = REPO / "plugins" / "dist"
FIXTURES = REPO / "tests" / "plugins" / "dist"
STATIC_KEYS = DIST / "static_keys.wasm"
HEADER_AUTH = DIST / "header_auth.wasm"
OIDC = DIST / "oidc.wasm"
HOSTILE = FIXTURES / "hostile.wasm"


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def plugin_entry(name: str, path: Path, world: str = "authenticator", config: dict | None = None,
                 limits: dict | None = None, allowed_hosts: list[str] | None = None,
                 failure: str | None = None) -> str:
    lines = ["[[plugins]]", f"name = {toml_value(name)}", f"world = {toml_value(world)}",
             f"path = {toml_value(str(path))}"]
    if allowed_hosts is not None:
        lines.append(f"allowed_hosts = {toml_value(allowed_hosts)}")
    if failure is not None:
        lines.append(f"failure = {toml_value(failure)}")
    if config:
        lines.append(f"config = {toml_value(config)}")
    if limits:
        lines.append(f"limits = {toml_value(limits)}")
    return "\n".join(lines) + "\n"


def plugin_server(start_server, *entries: str, start: bool = True, **kw) -> SluiceServer:
    """A server whose config file loads the given `[[plugins]]` entries."""
    srv = start_server(start=False, **kw)
    cfg = srv.root / "plugins.toml"
    cfg.write_text("\n".join(entries))
    srv.args = ["--config", str(cfg)]
    if start:
        srv.start()
    return srv


def admin_plugins(srv: SluiceServer) -> dict[str, dict]:
    """`GET /_sluice/admin/plugins` signed as root, by plugin name."""
    r = srv.raw().request("GET", "/_sluice/admin/plugins")
    assert r.status == 200, r
    return {p["name"]: p for p in json.loads(r.body)["plugins"]}


class LoopbackHttp:
    """A tiny HTTP server on 127.0.0.1 that answers GETs from `routes` and counts hits."""

    def __init__(self, routes: dict[str, bytes] | None = None):
        self.routes = dict(routes or {})
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits.append(self.path)
                body = outer.routes.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.authority}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class BlackHole:
    """Accepts TCP connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
