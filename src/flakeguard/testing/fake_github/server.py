"""HTTP plumbing: two threaded `http.server`s, the API and the signed blob host.

Threaded rather than ASGI: no event loop of its own (sync and async tests can both use it), it
starts in milliseconds, and it can do what an ASGI server cannot — reset a connection mid-request.
Every request is journaled, then a matching injected fault is applied, then it is answered.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flakeguard.testing.fake_github.api import GitHubApi, Response, template_for
from flakeguard.testing.fake_github.blobs import BlobHost
from flakeguard.testing.fake_github.faults import Fault, Faults, fault_answer
from flakeguard.testing.fake_github.journal import Journal, RecordedRequest, RecordedResponse

_ARTIFACT_IN_PATH = re.compile(r"/actions/artifacts/(\d+)/")
_BLOB_PATH = re.compile(r"/_blob/(\d+)")


@dataclass(frozen=True)
class Wiring:
    """What the servers answer with."""

    api: GitHubApi
    blobs: BlobHost
    faults: Faults
    journal: Journal
    rate_limit: int


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], wiring: Wiring):
        self.wiring = wiring
        super().__init__(addr, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""
    timeout = 30
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _read_body(self) -> bytes:
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Closes the TCP connection with a RST and no response."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        for f in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                f.close()
        self.connection.close()

    def _disrupt(self, fault: Fault, artifact: re.Match[str] | None) -> bool:
        """Applies a fault that is not itself an answer; True when the connection is gone."""
        if fault.kind == "slow":
            time.sleep(fault.seconds)
        elif fault.kind == "reset":
            self._reset()
            return True
        elif fault.kind == "truncated_zip" and artifact is not None:
            self.server.wiring.blobs.truncate_next(int(artifact.group(1)), fault.keep)
        return False


class ApiHandler(_Handler):
    def _handle(self) -> None:
        wiring = self.server.wiring
        split = urlsplit(self.path)
        headers = self._headers()
        body = self._read_body()
        wiring.journal.request(RecordedRequest(self.command, split.path, headers, split.query, "api"))
        template = template_for(self.command, split.path)
        fault = wiring.faults.take(self.command, split.path, template)
        if fault is not None and fault.answers:
            status, hdrs, payload = fault_answer(fault, wiring.api.budget_for(headers), wiring.rate_limit)
            self._answer(Response(status, hdrs, payload, template))
            return
        if fault is not None and self._disrupt(fault, _ARTIFACT_IN_PATH.search(split.path)):
            return
        response = wiring.api.handle(self.command, self.path, headers, body)
        if fault is not None and fault.kind == "lost_response":  # done, but the answer never arrives
            status, hdrs, payload = fault_answer(Fault.server_error(fault.status), None, wiring.rate_limit)
            response = Response(status, hdrs, payload, template)
        self._answer(response)

    def _answer(self, response: Response) -> None:
        path = urlsplit(self.path).path
        self.server.wiring.journal.response(
            RecordedResponse(
                self.command, path, response.template, response.status, response.headers, response.body
            )
        )
        self._send(response.status, response.body, response.headers)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle


class BlobHandler(_Handler):
    server_version = "Windows-Azure-Blob/1.0"

    def do_GET(self) -> None:
        wiring = self.server.wiring
        split = urlsplit(self.path)
        wiring.journal.request(RecordedRequest("GET", split.path, self._headers(), split.query, "blob"))
        blob = _BLOB_PATH.fullmatch(split.path)
        fault = wiring.faults.take("GET", split.path, None)
        if fault is not None and fault.answers:
            self._send(fault.status, b"<Error><Code>ServerBusy</Code></Error>", {})
            return
        if fault is not None and self._disrupt(fault, blob):
            return
        if blob is None:
            self._send(404, b"", {})
            return
        status, data, headers = wiring.blobs.serve(int(blob.group(1)), dict(parse_qsl(split.query)))
        self._send(status, data, headers)
