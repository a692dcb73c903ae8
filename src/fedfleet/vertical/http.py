"""The network transport: protocol messages over HTTP (standard library only).

The active party POSTs each framed message (:func:`~fedfleet.vertical.protocol.pack`) to a
passive party's URL and reads the framed reply; the passive party runs
:class:`~fedfleet.vertical.protocol.PassiveService` behind :func:`serve`. A message the
service rejects comes back as status 400 with its one-line reason, which the active party
raises as :class:`~fedfleet.errors.UpdateRejected`. No TLS or authentication: across
machines, run it inside a VPN or an SSH tunnel.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

from fedfleet.errors import FedfleetError, UpdateRejected
from fedfleet.vertical.protocol import Message, PassiveService, pack, unpack

MAX_MESSAGE = 1 << 30  # bytes a passive party accepts in one request


class HttpTransport:
    """Sends messages to the passive party at ``url`` and returns its replies.

    Attributes
    ----------
    wire_bytes_sent, wire_bytes_received : int
        Request and reply bodies (framing included, HTTP headers not).
    """

    def __init__(self, url: str, timeout: float = 300.0) -> None:
        self.url = url
        self.timeout = timeout
        self.wire_bytes_sent = 0
        self.wire_bytes_received = 0

    def __call__(self, message: Message) -> Message:
        body = pack(message)
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                blob = response.read()
        except urllib.error.HTTPError as exc:
            refusal = exc.read().decode(errors="replace").strip() or exc.reason
            raise UpdateRejected(f"the party at {self.url} refused the {message.kind} message: {refusal}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise UpdateRejected(f"cannot reach the party at {self.url} ({reason}); "
                                 "start it first (fedfleet vertical-party --role passive)") from None
        self.wire_bytes_sent += len(body)
        self.wire_bytes_received += len(blob)
        return unpack(blob)


def serve(service: PassiveService, host: str, port: int, announce: Callable[[str], None],
          idle_timeout: float = 600.0) -> None:
    """Answer messages for ``service`` at ``http://host:port/`` until ``stop``, one at a time.

    ``announce`` receives the URL once the socket listens (port 0 picks a free one).

    Raises
    ------
    UpdateRejected
        If no message arrives for ``idle_timeout`` seconds (the active party is gone).
    """
    state = {"stopped": False, "idle": False}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            declared = self.headers.get("Content-Length") or ""
            length = int(declared) if declared.isdigit() else -1
            if not 0 <= length <= MAX_MESSAGE:
                self._send(413, f"message length {declared!r} is not a number in 0..{MAX_MESSAGE} bytes".encode())
                return
            try:
                message = unpack(self.rfile.read(length))
                reply = pack(service.handle(message))
            except FedfleetError as exc:
                self._send(400, str(exc).encode())
                return
            self._send(200, reply)
            state["stopped"] = message.kind == "stop"

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    class Server(HTTPServer):
        def handle_timeout(self) -> None:
            state["idle"] = True

    with Server((host, port), Handler) as server:
        server.timeout = idle_timeout
        announce(f"http://{host}:{server.server_address[1]}/")
        while not state["stopped"]:
            server.handle_request()
            if state["idle"]:
                raise UpdateRejected(f"party {service.index} got no message for {idle_timeout:g} s; "
                                     "the active party is gone, so it stopped")
