"""EC2 instance metadata, IMDSv2 only (the launcher requires HttpTokens=required), for one instance: a session token
from PUT /latest/api/token, then the instance profile's role and its temporary credentials."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Imds:
    def __init__(self, role: str, instance_id: str) -> None:
        self.role, self.instance_id = role, instance_id
        self.token = secrets.token_urlsafe(24)
        self.violations: list[str] = []
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_PUT(self) -> None:  # noqa: N802
                if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    imds.violations.append(f"PUT {self.path} without a token TTL")
                    return self._send(400, b"")
                self._send(200, imds.token.encode())

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                    imds.violations.append(f"GET {self.path} without the IMDSv2 session token")
                    return self._send(401, b"")
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self._send(200, imds.role.encode())
                if self.path == base + imds.role:
                    return self._send(200, json.dumps({
                        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAVMROLE000000TEST",
                        "SecretAccessKey": "vm-role-secret", "Token": "vm-role-session-token",
                        "Expiration": "2099-01-01T00:00:00Z"}).encode())
                if self.path == "/latest/meta-data/instance-id":
                    return self._send(200, imds.instance_id.encode())
                self._send(404, b"")

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
