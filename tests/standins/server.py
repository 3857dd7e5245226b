"""The HTTP plumbing every stand-in shares: routing, a request log, fault injection, spec violations.

A stand-in subclasses `StandIn`, registers routes with `self.route(...)` and may override `check()` to
validate each request against the service's published description. A violation answers 400 (so the
client sees it as a real service would refuse it) and is recorded; `assert_clean()` fails the test.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    stream: Any = None  # an iterator of bytes: sent chunked, as it is produced

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            return b"", headers
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body), headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return json.dumps(self.body).encode(), headers


class SpecViolation(Exception):
    """The request does not match the service's published description."""


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    response: Response
    times: int
    after: bool  # True: do the real work, then answer with the fault (the "lost response" case)


@dataclass
class LogEntry:
    method: str
    path: str
    status: int
    body: bytes
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Handler = Callable[..., "Response | tuple[int, Any] | dict | list | None"]


class StandIn:
    """A threaded HTTP server on 127.0.0.1 with a route table. Use as a context manager or start()/stop()."""

    prefix = ""  # path prefix every route lives under, e.g. "/api/v3"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self.requests: list[LogEntry] = []
        self.violations: list[str] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.scheme = "http"

    # --- configuration -------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """`pattern` is a regex over the path after `prefix`; named groups become keyword arguments."""
        self._routes.append((method.upper(), re.compile(pattern + r"\Z"), handler))

    def inject(self, method: str, path_regex: str, status: int, headers: dict[str, str] | None = None,
               body: Any = None, times: int = 1, after: bool = False) -> None:
        """Answer the next `times` matching requests with `status` (before or after doing the real work)."""
        with self.lock:
            self._faults.append(Fault(method.upper(), re.compile(path_regex), Response(status, body, headers or {}),
                                      times, after))

    def clear_faults(self) -> None:
        """Forget the injected faults that have not fired yet (the service recovers)."""
        with self.lock:
            self._faults.clear()

    def check(self, request: Request, handler: Handler, groups: dict[str, str]) -> None:
        """Override: raise SpecViolation when the request breaks the published description."""

    def authenticate(self, request: Request) -> Response | None:
        """Override: a Response (401/403) to refuse the request, None to let it through."""
        return None

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self, tls: tuple[str, str] | None = None) -> "StandIn":
        """`tls`: (certificate file, key file) to serve HTTPS, for clients that insist on it (azure-identity)."""
        standin = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                response = standin.dispatch(request)
                if response.stream is not None:  # chunked: produced after the lock is released, live
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for chunk in response.stream:
                            if chunk:
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                                self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True
                    return
                payload, headers = response.encode()
                self.send_response(response.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @staticmethod
    def self_signed(folder: "Path") -> tuple[str, str]:
        """A certificate for 127.0.0.1 and localhost, valid for a day; the tests trust it via REQUESTS_CA_BUNDLE."""
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cml-action stand-in")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                .sign(key, hashes.SHA256()))
        cert_file, key_file = folder / "standin.crt", folder / "standin.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return str(cert_file), str(key_file)

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def assert_clean(self) -> None:
        assert not self.violations, "requests that break the published API description:\n" + "\n".join(self.violations)

    # --- dispatch --------------------------------------------------------------------------------
    def _take_fault(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.times > 0 and fault.method in (request.method, "*") and fault.path.search(request.path):
                    fault.times -= 1
                    return fault
        return None

    def dispatch(self, request: Request) -> Response:
        response = self._dispatch(request)
        with self.lock:
            self.requests.append(LogEntry(request.method, request.path, response.status, request.body,
                                          request.query, request.headers))
        return response

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix):] or "/"
        match = None
        for method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and method == request.method:
                break
        else:
            if any(p.match(path) for _, p, _ in self._routes):
                return Response(405, {"message": f"method {request.method} not allowed on {request.path}"})
            self.violations.append(f"{request.method} {request.path}: no such endpoint")
            return Response(404, {"message": "Not Found"})
        groups = match.groupdict()
        try:
            self.check(request, handler, groups)
        except SpecViolation as exc:
            self.violations.append(f"{request.method} {request.path}: {exc}")
            return Response(400, {"message": f"stand-in: request breaks the API description: {exc}"})
        refused = self.authenticate(request)
        if refused is not None:
            return refused
        fault = self._take_fault(request)
        if fault is not None and not fault.after:
            return fault.response
        with self.lock:
            try:
                result = handler(request, **groups)
            except SpecViolation as exc:
                self.violations.append(f"{request.method} {request.path}: {exc}")
                return Response(400, {"message": f"stand-in: request breaks the API description: {exc}"})
        response = _as_response(result)
        if fault is not None:
            return fault.response
        return response


def _as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        return Response(result[0], result[1])
    if result is None:
        return Response(204)
    return Response(200, result)
