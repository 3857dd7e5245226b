"""A small repository a hostile pull request could have written, and the checkout credentials it can find.

Training commands in these tests are shell or python scripts that behave badly on purpose: they read our
environment from /proc, print workflow commands, four backticks, mentions, secrets in several encodings.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from repo_helpers import git

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
# Docker's default capability set: what a container action's processes hold (no CAP_SYS_PTRACE)
DOCKER_CAPS = ("-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+net_bind_service,"
               "+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap")


def small_repo(tmp_path: Path, metrics: dict | None = None, *, token: str = "") -> Path:
    """main: metrics and a plot committed; feature: one more commit. With `token`, .git/config carries it the
    way actions/checkout leaves it (persist-credentials: true)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "metrics.json").write_text(json.dumps(metrics or {"acc": 0.9, "loss": 0.3}))
    (repo / "plot.png").write_bytes(PNG)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "notes.txt").write_text("feature work\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "feature")
    if token:
        header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        git(repo, "config", "--local", "http.https://github.com/.extraheader", f"AUTHORIZATION: basic {header}")
    return repo


def script(repo: Path, name: str, text: str) -> str:
    """Write a hostile training script into the workspace; returns the command that runs it."""
    (repo / name).write_text(text)
    return f"{sys.executable} {name}"


def as_in_a_container(argv: list[str]) -> list[str]:
    """Run as a container action's process runs: root with Docker's default capabilities (no CAP_SYS_PTRACE).
    A non-root user needs no wrapper: same-user processes are the case PR_SET_DUMPABLE covers."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop CAP_SYS_PTRACE as Docker does"
    return [setpriv, f"--bounding-set={DOCKER_CAPS}", "--inh-caps=-all", "--", *argv]


def run_entry(repo: Path, argv: list[str], env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    from repo_helpers import GIT_ENV, ROOT

    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "INPUT_", "CML_"))}
    base.update(GIT_ENV)
    base["CML_RETRY_BACKOFF"] = "0.05"
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    command = as_in_a_container([sys.executable, str(ROOT / "entrypoint.py"), *argv])
    return subprocess.run(command, cwd=repo, env={**base, **env}, capture_output=True, text=True, timeout=timeout)


def encodings(secret: str) -> list[str]:
    """How a training would smuggle a secret past a plain-text filter."""
    from urllib.parse import quote

    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode().rstrip("="), base64.b64encode(b"x-access-token:" + raw).decode(),
            quote(secret, safe=""), raw.hex(), base64.b64encode(b"ab" + raw).decode()[4:-4]]


def executed_commands(log: str) -> list[str]:
    """The workflow commands GitHub's runner would act on in this log: `::name...::` lines, none between
    `::stop-commands::TOKEN` and `::TOKEN::` (the documented rule)."""
    done: list[str] = []
    stopped = ""
    for line in log.splitlines():
        if stopped:
            if line == f"::{stopped}::":
                stopped = ""
            continue
        if line.startswith("::stop-commands::"):
            stopped = line.split("::", 3)[2]
            continue
        if line.startswith("::"):
            done.append(line)
    return done
