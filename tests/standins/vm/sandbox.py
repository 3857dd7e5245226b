"""A sandboxed "VM" that boots user-data for real: the host half (see inside.py for the VM half).

The test process keeps every stand-in on 127.0.0.1. The VM runs in its own network namespace, where it reaches the
cloud's real addresses (169.254.169.254, metadata.google.internal, ssm.<region>.amazonaws.com, management.azure.com,
the runner download hosts...). Each of those is a listener inside the namespace that forwards, through a Unix socket
in the test's temporary folder, to a bridge here that connects to the stand-in on loopback. TLS is terminated inside
the namespace with a certificate from a CA made for this test only and trusted only there.

Stub programs stand in for what a test cannot do: `shutdown` records the power-off, `apt-get` "installs" stub
docker / nvidia-ctk binaries, `systemctl` records, `nvidia-smi` exists on GPU machines.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).parent
RUNNER_RECORD = "/var/lib/cml-sandbox/runner"  # inside the VM, where the (unprivileged) runner can write


def make_ca(folder: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and one leaf for every hostname the VM talks to over TLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cml-action test CA (throwaway)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans.append(x509.IPAddress(ipaddress.ip_address("169.254.169.254")))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (folder / "leaf.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    return folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"


class _Bridge:
    """Unix socket (reachable from the namespace) -> TCP on the host's loopback, optionally TLS to the stand-in."""

    def __init__(self, path: Path, port: int, tls: bool) -> None:
        self.path, self.port, self.tls = path, port, tls
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        from standins.vm.inside import read_all

        try:
            request = read_all(conn)  # the VM side shut its write half after the request
            upstream = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            if self.tls:  # the stand-in's own certificate, on loopback: not what this bridge checks
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                upstream = context.wrap_socket(upstream, server_hostname="127.0.0.1")
            upstream.sendall(request)
            conn.sendall(read_all(upstream))  # the request said Connection: close
            upstream.close()
        except OSError:
            pass  # the VM's client sees the connection fail instead of hanging
        finally:
            conn.close()

    def close(self) -> None:
        self.closed = True
        self.server.close()


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        key = f"{self.headers.get('Host', '').split(':')[0]}{urlsplit(self.path).path}"
        self.hits.append(key)
        body = self.files.get(key)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Boot:
    powered_off: bool
    poweroff: str  # what the stub shutdown was called with
    log: str  # /var/log/cml-runner.log
    console: str  # everything the user-data printed
    runner: str  # what the stub runner recorded
    apt: str
    docker: str
    cmdline_leaks: list[str]
    users: str
    home: list[str]
    seconds: float
    files_fetched: list[str] = field(default_factory=list)


class VmSandbox:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp / "vm"
        self.tmp.mkdir()
        self.record = self.tmp / "record"
        self.record.mkdir()
        self._bridges: list[_Bridge] = []
        self._listen: list[dict] = []
        self._hosts: dict[str, str] = {}
        self._tls_names: list[str] = []
        handler = type("Files", (_Files,), {"files": {}, "hits": []})
        self._files_handler = handler
        self._files = type("FilesServer", (ThreadingHTTPServer,), {"request_queue_size": 64})(("127.0.0.1", 0), handler)
        threading.Thread(target=self._files.serve_forever, daemon=True).start()

    # --- what the VM can reach ------------------------------------------------------------------------
    def _bridge(self, port: int, tls: bool = False) -> str:
        path = self.tmp / f"b{len(self._bridges)}.sock"
        self._bridges.append(_Bridge(path, port, tls))
        return str(path)

    def hostname(self, name: str, port: int, upstream_port: int, *, tls: bool, upstream_tls: bool = False) -> None:
        """`name` resolves, in the VM, to an address of its own where `port` forwards to the host's stand-in."""
        ip = self._hosts.setdefault(name, f"127.0.2.{len(self._hosts) + 1}")
        if tls:
            self._tls_names.append(name)
        self._listen.append({"ip": ip, "port": port, "target": self._bridge(upstream_port, upstream_tls), "tls": tls})

    def metadata(self, upstream_port: int, names: tuple[str, ...] = (), upstream_tls: bool = False) -> None:
        """169.254.169.254:80 (and `names`, e.g. metadata.google.internal) -> the cloud's metadata stand-in."""
        for name in names:
            self._hosts[name] = "169.254.169.254"
        self._listen.append({"ip": "169.254.169.254", "port": 80, "target": self._bridge(upstream_port, upstream_tls),
                             "tls": False})

    def loopback(self, url: str) -> None:
        """A stand-in URL baked into the user-data by the launcher's own endpoint override (http://127.0.0.1:P)."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._listen.append({"ip": "127.0.0.1", "port": port, "target": self._bridge(port, parts.scheme == "https"),
                             "tls": False})

    def serve_file(self, url: str, body: bytes) -> None:
        """An https download (runner package, checksum list) served by the sandbox itself."""
        parts = urlsplit(url)
        self._files_handler.files[f"{parts.hostname}{parts.path}"] = body
        if parts.hostname not in self._hosts:
            self.hostname(parts.hostname or "", 443, self._files.server_address[1], tls=True)

    # --- stubs ----------------------------------------------------------------------------------------
    def _stubs(self, gpu: bool, docker: bool) -> dict[str, str]:
        rec = self.record
        stubs = self.tmp / "stubs"
        stubs.mkdir(exist_ok=True)
        texts = {
            "/usr/local/sbin/shutdown": f'#!/bin/bash\necho "shutdown $*" >> {rec}/poweroff\n',
            "/usr/local/sbin/systemctl": f'#!/bin/bash\necho "systemctl $*" >> {rec}/systemctl\n',
            "/usr/local/sbin/apt-get": (
                f'#!/bin/bash\necho "apt-get $*" >> {rec}/apt\n'
                'if [[ " $* " == *" install "* ]]; then\n'
                '  for p in "$@"; do\n'
                '    case "$p" in\n'
                f'      docker.io) install -m 0755 {stubs}/pkg-docker /usr/local/bin/docker; groupadd -f docker ;;\n'
                f'      nvidia-container-toolkit) install -m 0755 {stubs}/pkg-nvidia-ctk /usr/local/bin/nvidia-ctk ;;\n'
                '    esac\n'
                '  done\n'
                'fi\n'),
        }
        if gpu:
            texts["/usr/local/bin/nvidia-smi"] = ('#!/bin/bash\n[ "${1:-}" = -L ] && '
                                                  'echo "GPU 0: Tesla T4 (UUID: GPU-00000000-stub)"\nexit 0\n')
        (stubs / "pkg-docker").write_text(
            f'#!/bin/bash\necho "docker $*" >> {rec}/docker\n'
            'case "$1 ${3:-}" in\n'
            f'  "info {{{{json .Runtimes}}}}") if [ -e {rec}/nvidia-runtime ]; then echo \'{{"nvidia":{{}},"runc":{{}}}}\'; '
            'else echo \'{"runc":{}}\'; fi ;;\n'
            '  "info "*) echo "Server Version: 27.5.1-stub" ;;\n'
            '  "version "*) echo 27.5.1-stub ;;\n'
            'esac\n')
        (stubs / "pkg-nvidia-ctk").write_text(
            f'#!/bin/bash\necho "nvidia-ctk $*" >> {rec}/docker\n'
            f'[ "$*" = "runtime configure --runtime=docker" ] && touch {rec}/nvidia-runtime\nexit 0\n')
        if docker:  # an image that already has its engine
            texts["/usr/local/bin/docker"] = (stubs / "pkg-docker").read_text()
        out = {}
        for target, text in texts.items():
            path = stubs / target.rsplit("/", 1)[1]
            path.write_text(text)
            out[str(path)] = target
        return out

    ONE_JOB = "mkdir -p _diag && touch _diag/Worker_20261201-000000-utc.log\nsleep 0.3\nexit 0\n"

    def github_runner(self, url: str, job: str = ONE_JOB) -> str:
        """A stub actions-runner tarball at `url`: run.sh records how it was started, then does `job` (the real
        runner writes _diag/Worker_*.log when a job starts). Returns its SHA-256."""
        script = (f'#!/bin/bash\n{{ echo "user=$(id -un)"; echo "args=$*"; '
                  f'echo "jitconfig=${{ACTIONS_RUNNER_INPUT_JITCONFIG:-}}"; }} > {RUNNER_RECORD}\n{job}').encode()
        deps = f'#!/bin/bash\necho "installdependencies.sh as $(id -un)" >> {self.record}/apt\n'.encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, body in (("run.sh", script), ("bin/installdependencies.sh", deps)):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(body), 0o755
                tar.addfile(info, io.BytesIO(body))
        self.serve_file(url, buf.getvalue())
        return hashlib.sha256(buf.getvalue()).hexdigest()

    GITLAB_JOB = "mkdir /opt/cml-runner/builds/0 && sleep 0.3\nexit 0\n"  # a job clones into the builds folder

    def gitlab_runner(self, url: str, checksums_url: str, tampered: bool = False, job: str = GITLAB_JOB) -> None:
        """A stub gitlab-runner binary and the vendor's checksum list naming it."""
        body = (f'#!/bin/bash\n{{ echo "user=$(id -un)"; printf "arg=%s\\n" "$@"; '
                f'echo "token=${{CI_SERVER_TOKEN:-}}"; }} > {RUNNER_RECORD}\n{job}').encode()
        digest = hashlib.sha256(body + (b"x" if tampered else b"")).hexdigest()
        self.serve_file(url, body)
        self.serve_file(checksums_url, f"{digest}  binaries/{url.rsplit('/', 1)[1]}\n".encode())

    # --- boot -----------------------------------------------------------------------------------------
    def boot(self, user_data: str, *, gpu: bool = False, docker: bool = False, agent_scripts: tuple[str, ...] = (),
             secrets: tuple[str, ...] = (), timeout: float = 60) -> Boot:
        script = self.tmp / "user-data"
        script.write_text(user_data)
        ca, cert, key = make_ca(self.tmp, self._tls_names or ["localhost"])
        cfg = {"root": str(self.tmp / "root"), "record": str(self.record), "ca": str(ca), "cert": str(cert),
               "key": str(key), "hosts": self._hosts, "listen": self._listen, "stubs": self._stubs(gpu, docker),
               "user_data": str(script), "agent_scripts": list(agent_scripts), "secrets": list(secrets),
               "timeout": timeout, "hostname": "cml-runner-vm"}
        (self.tmp / "vm.json").write_text(json.dumps(cfg))
        out = subprocess.run(["unshare", "--net", "--mount", "--pid", "--mount-proc", "--fork", "--", sys.executable, str(HERE / "inside.py"),
                              str(self.tmp / "vm.json")], capture_output=True, text=True, timeout=timeout + 60,
                             check=False)
        if out.returncode != 0:
            raise AssertionError(f"the sandbox failed: {out.stderr[-3000:]}")
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        rec = self.record
        return Boot(seen["powered_off"], _read(rec / "poweroff"), seen["log"], _read(rec / "console.log"),
                    seen["runner"], _read(rec / "apt"), _read(rec / "docker"), seen["cmdline_leaks"],
                    seen["users"], seen["home"], seen["seconds"], list(self._files_handler.hits))

    def close(self) -> None:
        for bridge in self._bridges:
            bridge.close()
        self._files.shutdown()
        self._files.server_close()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
