"""The one HTTP server of the tests: files (and fake APIs) on 127.0.0.1, misbehaving on request.

``files[path]`` is served with HTTP Range support: bytes, or (content type, bytes).
``routes[path]`` answers dynamically: ``route(query) -> (status, headers, body)`` (the fake
Openverse and Commons APIs). ``faults[key]`` is a list of replies (status, headers, body) served,
one per request, before the normal reply; ``key`` is ``fault_key(path, query)`` (default: the
path). ``cut_after[path] = n``: the next reply for ``path`` announces the full length but stops
after ``n`` bytes (a dropped connection), once. ``ignore_range``: answer 200 with the whole file.
``log`` records (path with query, headers) of every request.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, dict[str, str], bytes]


class LocalServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes | tuple[str, bytes]] = {}
        self.routes: dict[str, Callable[[dict[str, str]], Reply]] = {}
        self.faults: dict[str, list[Reply]] = {}
        self.fault_key: Callable[[str, dict[str, str]], str] = lambda path, query: path
        self.cut_after: dict[str, int] = {}
        self.ignore_range = False
        self.log: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # close() (shutdown) waits for the serving loop to look at its stop flag, which it does
        # every poll_interval: the default 0.5 s cost every test with a server half a second
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, files: dict[str, bytes | tuple[str, bytes]]) -> LocalServer:
        self.files.update(files)
        return self

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        """(path without query, Range header) of every request."""
        return [(path.split("?")[0], headers.get("Range")) for path, headers in self.log]

    def requests_to(self, prefix: str) -> int:
        return sum(1 for path, _ in self.log if path.startswith(prefix))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with self.lock:
            self.log.append((h.path, dict(h.headers)))
            fault = self.faults.get(self.fault_key(url.path, query))
            reply = fault.pop(0) if fault else None
        if reply is not None:
            return self.send(h, *reply)
        if url.path in self.routes:
            return self.send(h, *self.routes[url.path](query))
        if url.path not in self.files:
            return self.send(h, 404, {}, b"")
        entry = self.files[url.path]
        ctype, data = entry if isinstance(entry, tuple) else (None, entry)
        headers = {"Accept-Ranges": "bytes", **({"Content-Type": ctype} if ctype else {})}
        status, start = 200, 0
        asked = h.headers.get("Range")
        if asked and not self.ignore_range:
            start = int(asked.split("=")[1].split("-")[0])
            if start >= len(data):
                return self.send(h, 416, {"Content-Range": f"bytes */{len(data)}"}, b"")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send(h, status, headers, data[start:], cut=self.cut_after.pop(url.path, None))

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes,
             cut: int | None = None) -> None:
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            h.wfile.flush()
            h.close_connection = True
