"""A recording reverse proxy in front of an emulator: every Google API call the code makes,
through the real client libraries, to the real emulator, written down on the way.

One proxy per identity and emulator (its own loopback port): a process given the proxy's URL
(STORAGE_EMULATOR_HOST, AIRTIME_BQ_API_ENDPOINT) is recorded as that identity, whatever
process it is (a step pod's entry point, the server); set-up the test does itself goes to the
emulator directly and is not recorded. URLs the emulator hands out (resumable upload
sessions, media links) are rewritten to the proxy's, so follow-up calls come back through it.
deploy/gcp/operations.py turns the calls into API operations.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deploy.gcp.operations import Call

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length", "host"}


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self.upstream = upstream.rstrip("/")
        self._host, self._port = parts.hostname, parts.port
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _rewrite(self, data: bytes) -> bytes:
        up = self.upstream.split("://", 1)[1].encode()
        mine = self.url.split("://", 1)[1].encode()
        return data.replace(up, mine)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                split = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(proxy._host, proxy._port, timeout=300)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                finally:
                    upstream.close()
                content_type = dict((k.lower(), v) for k, v in out_headers).get("content-type", "")
                if "json" in content_type:
                    data = proxy._rewrite(data)
                proxy._record(Call(self.command, split.path, query, _job_resource(self.headers, body),
                                   response.status))
                self.send_response(response.status)
                for key, value in out_headers:
                    if key.lower() == "location":
                        value = proxy._rewrite(value.encode()).decode()
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        return Handler


def _job_resource(headers, body: bytes) -> dict | None:  # noqa: ANN001 - http.client.HTTPMessage
    """The JSON a call sends (a BigQuery job's configuration): the whole body when it is JSON,
    the first part of a multipart/related upload (metadata, then media)."""
    content_type = headers.get("Content-Type", "")
    if not body:
        return None
    if content_type.startswith("application/json"):
        with contextlib.suppress(ValueError):
            return json.loads(body)
        return None
    if content_type.startswith("multipart/related"):
        boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
        for part in body.split(b"--" + boundary)[1:]:
            head, _, payload = part.partition(b"\r\n\r\n")
            if b"application/json" in head.lower():
                with contextlib.suppress(ValueError):
                    return json.loads(payload.rstrip(b"\r\n-"))
    return None


@contextlib.contextmanager
def recording(upstream: str) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
