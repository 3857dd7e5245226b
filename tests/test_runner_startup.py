"""The VM bootstrap script, executed for real in a sandbox: stub runner package, stub `shutdown`.

Proves the three ways a machine dies (after its job, idle, at max lifetime) and that a tampered package
or a missing secret also powers off. The script runs with bash exactly as rendered for a launch.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from cml_action.runners import startup

RUN_SH = {
    # the job: the real runner writes _diag/Worker_*.log when a job starts
    "job": "mkdir -p _diag && touch _diag/Worker_20261123.log && sleep 0.5 && exit 0",
    "idle": "sleep 60",
    "long": "mkdir -p _diag && touch _diag/Worker_20261123.log && sleep 60",
}


def _package(tmp: Path, mode: str) -> startup.Package:
    script = f'#!/bin/bash\nprintf "%s\\n" "$@" > "$SANDBOX/runner-args"\n{RUN_SH[mode]}\n'.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("run.sh")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    path = tmp / "runner.tar.gz"
    path.write_bytes(buf.getvalue())
    return startup.Package(path.as_uri(), hashlib.sha256(buf.getvalue()).hexdigest())


SECRET = 'path="$SANDBOX/handover"; cat "$path"; rm -f "$path"'
POWEROFF = "shutdown -h now"


def _sandbox(tmp: Path) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "shutdown"
    stub.write_text('#!/bin/bash\necho "shutdown $*" >> "$SANDBOX/poweroff"\n')
    stub.chmod(0o755)
    (tmp / "handover").write_text("JITCONFIG-one-job-secret")
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SANDBOX": str(tmp), "CML_RUNNER_HOME": str(tmp / "home"),
            "CML_RUNNER_LOG": str(tmp / "bootstrap.log"), "CML_RUNNER_USER": subprocess.getoutput("id -un"),
            "HOME": str(tmp)}


def _run(tmp: Path, mode: str, idle: int, lifetime: int, package: startup.Package | None = None,
         wait_for: float = 20.0) -> tuple[str, str]:
    script = startup.render(forge="github", name="cml-20261123000000-abcdef", idle_timeout_s=idle,
                            max_lifetime_s=lifetime, secret_snippet=SECRET, poweroff_snippet=POWEROFF,
                            package=package or _package(tmp, mode))
    (tmp / "startup.sh").write_text(script)
    proc = subprocess.Popen(["bash", str(tmp / "startup.sh")], env=_sandbox(tmp), start_new_session=True)
    deadline = time.monotonic() + wait_for
    try:
        while time.monotonic() < deadline and not (tmp / "poweroff").exists():
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log = (tmp / "bootstrap.log").read_text() if (tmp / "bootstrap.log").exists() else ""
    return ((tmp / "poweroff").read_text() if (tmp / "poweroff").exists() else ""), log


def test_powers_off_after_its_one_job_and_the_secret_is_consumed(tmp_path: Path):
    poweroff, log = _run(tmp_path, "job", idle=30, lifetime=60)
    assert poweroff.strip() == "shutdown -h now"
    assert "runner exited with status 0 after its job" in log
    assert (tmp_path / "runner-args").read_text().split() == ["--jitconfig", "JITCONFIG-one-job-secret"]
    assert not (tmp_path / "handover").exists()  # destroyed at the source
    assert "JITCONFIG" not in (tmp_path / "startup.sh").read_text()


def test_powers_off_when_no_job_starts_within_the_idle_timeout(tmp_path: Path):
    poweroff, log = _run(tmp_path, "idle", idle=1, lifetime=60)
    assert poweroff.strip() == "shutdown -h now"
    assert "no job started within 1s" in log


def test_a_running_job_is_not_idle_but_max_lifetime_still_wins(tmp_path: Path):
    poweroff, log = _run(tmp_path, "long", idle=1, lifetime=3)
    assert "maximum lifetime of 3s reached" in log
    assert "no job started" not in log
    assert poweroff.strip() == "shutdown -h now"


def test_a_tampered_package_powers_off_before_anything_runs(tmp_path: Path):
    good = _package(tmp_path, "job")
    poweroff, log = _run(tmp_path, "job", idle=30, lifetime=60, package=startup.Package(good.url, "0" * 64))
    assert "bootstrap failed" in log and poweroff
    assert not (tmp_path / "runner-args").exists()


def test_no_handed_over_secret_powers_off(tmp_path: Path):
    env_secret = 'true'
    script = startup.render(forge="github", name="cml-20261123000000-abcdef", idle_timeout_s=30, max_lifetime_s=60,
                            secret_snippet=env_secret, poweroff_snippet=POWEROFF, package=_package(tmp_path, "job"))
    (tmp_path / "startup.sh").write_text(script)
    subprocess.run(["bash", str(tmp_path / "startup.sh")], env=_sandbox(tmp_path), timeout=20, start_new_session=True)
    assert "no registration was handed over" in (tmp_path / "bootstrap.log").read_text()
    assert not (tmp_path / "runner-args").exists()


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_rendered_script_passes_shellcheck(tmp_path: Path, forge: str):
    script = startup.render(forge=forge, name="cml-20261123000000-abcdef", idle_timeout_s=300, max_lifetime_s=3600,
                            secret_snippet=SECRET, poweroff_snippet=POWEROFF, forge_url="https://gitlab.example.com")
    path = tmp_path / "startup.sh"
    path.write_text(script)
    out = subprocess.run(["shellcheck", "-s", "bash", "-S", "warning", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert startup.GITHUB_RUNNER_SHA256["x64"] in script or forge == "gitlab"
