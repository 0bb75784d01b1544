"""A local HTTP server standing in for the internet's download sites (loopback only).

Every path serves deterministic content derived from the path; a path containing
``/missing`` answers 404. ``requests`` counts what was fetched.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def content_for(path: str) -> bytes:
    seed = hashlib.sha256(path.encode()).digest()
    return seed * (1 + seed[0] * 4)


def digest_for(path: str) -> str:
    return "sha256:" + hashlib.sha256(content_for(path)).hexdigest()


class AssetServer:
    def __init__(self):
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if "/missing" in self.path:
                    self.send_error(404, "Not Found")
                    return
                body = content_for(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def mirror_for(self, origin: str) -> tuple[str, str]:
        """An ``--asset-mirror`` pair sending ``origin`` (scheme://host, or with a path) here."""
        return origin, f"{self.base_url}/{origin.split('://', 1)[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
