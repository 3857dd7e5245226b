"""The VM's side of the sandbox: runs as root inside network, mount and PID namespaces made by `unshare --net --mount --pid`
(its /proc shows the sandbox's processes only, as a VM's would).

It turns the namespace into a small cloud VM: loopback up, the metadata address 169.254.169.254 on `lo`, the cloud's
and the forge's hostnames in a private /etc/hosts, a throwaway CA as the only trusted one, stub binaries
(shutdown, apt-get, systemctl...) in /usr/local/{s,}bin, private /opt, /home, /var/log and /var/lib. Every listener
forwards to a Unix socket that the test bridges to a stand-in on the host's loopback: no packet leaves the namespace.

Then it runs the user-data exactly as given (bash, as root, cwd /, the PATH cloud-init uses) plus any agent commands
(Azure's CustomScript extension: its script, from a root-only file), and stops when the stub `shutdown` was called (or at the timeout), reporting what
it saw as JSON on stdout. Standard library only: it runs in the namespace with whatever python it was started with.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

VM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def read_all(sock: socket.socket) -> bytes:
    """Until the peer closes (a TLS peer may close without close_notify: that is the end too)."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_request(sock: socket.socket) -> bytes:
    """One HTTP request (headers and Content-Length body), rewritten to `Connection: close`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    length = next((int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def relay(client: socket.socket, target: str) -> None:
    """One request, one response, strictly in turn: a TLS socket is never read and written from two threads at once
    (OpenSSL does not allow it). The bridge on the host reads the request to EOF, so the write side is shut."""
    upstream = socket.socket(socket.AF_UNIX)
    try:
        upstream.connect(target)
        upstream.sendall(read_request(client))
        upstream.shutdown(socket.SHUT_WR)
        client.sendall(read_all(upstream))
    except (OSError, ssl.SSLError):
        pass
    finally:
        upstream.close()
        client.close()


def listen(ip: str, port: int, target: str, tls: ssl.SSLContext | None) -> None:
    server = socket.create_server((ip, port))

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        try:
            if tls is not None:
                conn = tls.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        relay(conn, target)

    threading.Thread(target=serve, daemon=True).start()


def make_vm(cfg: dict) -> None:
    root = Path(cfg["root"])
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
    etc = root / "etc"
    shutil.copytree("/etc", etc, symlinks=True, ignore_dangling_symlinks=True)
    hosts = ["127.0.0.1 localhost", "::1 localhost", f"127.0.1.1 {cfg['hostname']}"]
    hosts += [f"{ip} {name}" for name, ip in cfg["hosts"].items()]
    (etc / "hosts").write_text("\n".join(hosts) + "\n")
    bundle = etc / "ssl" / "certs" / "ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    if bundle.is_symlink() or bundle.exists():
        bundle.unlink()
    shutil.copy(cfg["ca"], bundle)
    sh("mount", "--bind", str(etc), "/etc")
    for path in ("/opt", "/home", "/var/log", "/var/lib", "/usr/local/bin", "/usr/local/sbin", "/root"):
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path)
    Path("/var/lib/cml-sandbox").mkdir(mode=0o777)
    os.chmod("/var/lib/cml-sandbox", 0o777)  # what the runner stub saw, written as the runner user
    for src, dst in cfg["stubs"].items():
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)
    tls = None
    if cfg.get("cert"):
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cfg["cert"], cfg["key"])
    for item in cfg["listen"]:
        listen(item["ip"], item["port"], item["target"], tls if item["tls"] else None)


def scan_cmdlines(secrets: list[str], seen: list[str], stop: threading.Event) -> None:
    """What any process on the VM could read: every command line, all the time the VM runs."""
    me = str(os.getpid())
    while not stop.is_set():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or entry.name == me:
                continue
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            for secret in secrets:
                if secret and secret in argv:
                    seen.append(argv.replace("\0", " ")[:200])
        stop.wait(0.02)


def main() -> int:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    make_vm(cfg)
    record = Path(cfg["record"])
    env = {"PATH": VM_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
    stop, leaks = threading.Event(), []
    scanner = threading.Thread(target=scan_cmdlines, args=(cfg["secrets"], leaks, stop), daemon=True)
    scanner.start()
    started = time.monotonic()
    with open(record / "console.log", "wb") as console:
        boot = subprocess.Popen(["/bin/bash", cfg["user_data"]], cwd="/", env=env, stdout=console,
                                stderr=subprocess.STDOUT, start_new_session=True)
        agents = []
        for n, text in enumerate(cfg["agent_scripts"]):
            time.sleep(0.3)  # the agent comes after cloud-init has started the user-data
            script = Path(f"/var/lib/waagent/custom-script/download/{n}/script.sh")
            script.parent.mkdir(parents=True, mode=0o700)
            script.write_text(text)
            script.chmod(0o700)
            agents.append(subprocess.Popen(["/bin/sh", str(script)], cwd="/", env=env, stdout=console,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        deadline = started + cfg["timeout"]
        while time.monotonic() < deadline and not (record / "poweroff").exists():
            time.sleep(0.05)
        powered_off = (record / "poweroff").exists()
        time.sleep(0.5)  # what the machine does between `shutdown` and the power going
        for proc in [boot, *agents]:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    stop.set()
    scanner.join()
    result = {"powered_off": powered_off, "seconds": round(time.monotonic() - started, 2),
              "cmdline_leaks": leaks[:5], "log": _read("/var/log/cml-runner.log"),
              "runner": _read("/var/lib/cml-sandbox/runner"),
              "home": sorted(str(p.relative_to("/opt")) for p in Path("/opt").rglob("*"))[:200],
              "users": _read("/etc/passwd")}
    print(json.dumps(result))
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
