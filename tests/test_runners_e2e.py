"""runner-launch / runner-teardown / runner-sweep end to end: the CLI as a subprocess, AWS on moto (through the
fault proxy), GitHub on its stand-in. After every failure: no VM, volume, NIC, IP, secret, role or runner left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repo_helpers import ROOT

REPO = "octo/models"
ADMIN = "ghp_runnerAdminToken0000000000000000000"
WEAK = "ghs_workflowToken000000000000000000000"


@pytest.fixture()
def gh(github_standin):
    github_standin.add_repo(REPO)
    github_standin.add_token(ADMIN, {"administration": "write", "actions": "write", "contents": "write",
                                     "metadata": "read"})
    github_standin.add_token(WEAK, {"contents": "write", "metadata": "read"})
    return github_standin


@pytest.fixture(params=["aws", "gcp", "azure"])
def cloud(request):
    """Each cloud behind the same fixture interface (see tests/standins/*/fixture.py)."""
    return request.getfixturevalue(f"{request.param}_cloud")


def launch_args(cloud, *extra: str) -> tuple[str, ...]:
    return ("runner-launch", "--cloud", cloud.cloud, "--cloud-region", cloud.region, "--cloud-gpu", "t4",
            "--cloud-spot", "true", "--cloud-type", "s m", *extra)


def teardown_args(cloud, label: str, *extra: str) -> tuple[str, ...]:
    return ("runner-teardown", "--cloud", cloud.cloud, "--cloud-region", cloud.region, "--runner-label", label, *extra)


def cli_env(gh, cloud, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "AWS_", "AZURE_", "GOOGLE_", "INPUT_", "CML_"))}
    return {**base, **cloud.env, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": gh.api_url,
            "GITHUB_SERVER_URL": gh.server_url, "GITHUB_RUN_ID": "4242", "GITHUB_OUTPUT": str(tmp_path / "out.txt"),
            "CML_POLL_INTERVAL": "0.05", "CML_RETRY_BACKOFF": "0.01"}


def cli(env: dict[str, str], *args: str, token: str = ADMIN, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), *args, "--token", token], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def outputs(tmp_path: Path) -> dict[str, str]:
    text = (tmp_path / "out.txt").read_text()
    return {m.group(1): m.group(3) for m in re.finditer(r"^([\w-]+)<<(\S+)\n(.*?)\n\2$", text, re.M | re.S)}


LAUNCH = ("runner-launch", "--cloud", "aws", "--cloud-region", "us-west-2", "--cloud-gpu", "t4", "--cloud-spot", "true",
          "--cloud-type", "s m")


def nothing_left(gh, cloud) -> None:
    assert cloud.leftovers() == []
    assert gh.runners(REPO) == []


def test_launch_registers_just_in_time_and_teardown_removes_everything(gh, cloud, tmp_path: Path):
    gh.runner_online_after = 2
    env = cli_env(gh, cloud, tmp_path)
    out = cli(env, *launch_args(cloud, "--runner-labels", "gpu"))
    assert out.returncode == 0, out.stderr + out.stdout
    result = outputs(tmp_path)
    label = result["runner-label"]
    (vm,) = cloud.instances()
    assert result["instance-ids"] == vm["id"] and vm["tags"]["cml-action-label"] == label
    (runner,) = gh.runners(REPO)
    assert runner.labels == [label, f"cml-cloud-{cloud.cloud}", "gpu"] and runner.name == result["runner-name"]
    # the startup script carries neither the JIT config nor any token; the secret waits in the cloud's hand-over
    assert runner.jit_config not in vm["startup_script"] and ADMIN not in vm["startup_script"]
    assert "actions-runner-linux-x64-2.337.0.tar.gz" in vm["startup_script"]
    assert [runner.jit_config in value for value in cloud.secrets().values()] == [True]

    out = cli(env, *teardown_args(cloud, label))
    assert out.returncode == 0, out.stderr
    nothing_left(gh, cloud)
    again = cli(env, *teardown_args(cloud, label))
    assert again.returncode == 0 and "already torn down" in again.stdout


def test_capacity_in_the_first_zone_moves_to_the_next(gh, aws_cloud, tmp_path: Path):
    gh.runner_online_after = 0
    aws_cloud.fail_capacity("us-west-2a", times=5)
    out = cli(cli_env(gh, aws_cloud, tmp_path), *LAUNCH)
    assert out.returncode == 0, out.stderr
    (vm,) = aws_cloud.instances()
    assert vm["zone"] == "us-west-2b"
    assert "no luck (zone)" in out.stdout


def test_no_capacity_anywhere_lists_every_attempt_and_leaves_nothing(gh, aws_cloud, tmp_path: Path):
    for zone in ("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"):
        aws_cloud.fail_capacity(zone, times=10)
    out = cli(cli_env(gh, aws_cloud, tmp_path), *LAUNCH, "--cloud-spot-fallback", "true")
    assert out.returncode == 1
    error = out.stderr.strip().splitlines()[-1]
    assert "after 16 attempt(s)" in error and "g4dn.2xlarge on-demand" in error  # 4 zones x 2 types x spot/on-demand
    nothing_left(gh, aws_cloud)


def test_boot_timeout_removes_vm_and_runner(gh, cloud, tmp_path: Path):
    out = cli(cli_env(gh, cloud, tmp_path), *launch_args(cloud, "--runner-boot-timeout", "1s"))
    assert out.returncode == 1
    assert "did not come online within 1s" in out.stderr
    nothing_left(gh, cloud)


def test_capacity_and_throttling_then_success_in_the_next_zone(gh, cloud, tmp_path: Path):
    gh.runner_online_after = 0
    from cml_action.clouds import open_provider

    first = open_provider(cloud.cloud, {**os.environ, **cloud.env}, cloud.region).zones(cloud.region)[0]
    cloud.fail_capacity(first, times=5)
    cloud.fail_throttle(times=1)
    out = cli(cli_env(gh, cloud, tmp_path), *launch_args(cloud))
    assert out.returncode == 0, out.stderr
    (vm,) = cloud.instances()
    assert vm["zone"] != first and "no luck (zone)" in out.stdout
    assert cli(cli_env(gh, cloud, tmp_path), *teardown_args(cloud, outputs(tmp_path)["runner-label"])).returncode == 0
    nothing_left(gh, cloud)


def test_failure_after_create_removes_vm_and_runner(gh, cloud, tmp_path: Path):
    gh.inject("GET", r"/actions/runners/\d+$", 500, times=50)
    out = cli(cli_env(gh, cloud, tmp_path), *launch_args(cloud))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    nothing_left(gh, cloud)


def test_a_token_without_administration_is_named_and_nothing_is_created(gh, aws_cloud, tmp_path: Path):
    out = cli(cli_env(gh, aws_cloud, tmp_path), *LAUNCH, token=WEAK)
    assert out.returncode == 1 and "administration: write" in out.stderr
    nothing_left(gh, aws_cloud)


def test_sigterm_mid_launch_cleans_up(gh, cloud, tmp_path: Path):
    env = cli_env(gh, cloud, tmp_path)
    proc = subprocess.Popen([sys.executable, str(ROOT / "entrypoint.py"), *launch_args(cloud), "--token", ADMIN],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not cloud.instances() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cloud.instances(), "the VM was never created"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    nothing_left(gh, cloud)


def test_preempted_job_is_re_run_when_asked(gh, cloud, tmp_path: Path):
    gh.runner_online_after = 0
    env = cli_env(gh, cloud, tmp_path)
    assert cli(env, *launch_args(cloud)).returncode == 0
    label = outputs(tmp_path)["runner-label"]
    (vm,) = cloud.instances()
    cloud.set_state(vm["id"], "terminated", preempted=True)
    gh.add_run(REPO, 4242, conclusion="failure")
    out = cli(env, *teardown_args(cloud, label, "--retry-on-preemption", "true"))
    assert out.returncode == 0, out.stderr
    assert "preempted" in out.stdout and gh.repos[REPO].reruns == [4242]
    nothing_left(gh, cloud)


def test_preemption_while_the_run_is_still_going_is_re_run_by_the_companion(gh, aws_cloud, tmp_path: Path):
    import json

    gh.runner_online_after = 0
    env = cli_env(gh, aws_cloud, tmp_path)
    assert cli(env, *launch_args(aws_cloud)).returncode == 0
    label = outputs(tmp_path)["runner-label"]
    (vm,) = aws_cloud.instances()
    aws_cloud.set_state(vm["id"], "terminated", preempted=True)
    gh.add_run(REPO, 4242, conclusion="failure", completes_after=1000)  # the teardown job is part of this run
    out = cli(env, *teardown_args(aws_cloud, label, "--retry-on-preemption", "true"))
    assert out.returncode == 0, out.stderr
    assert gh.repos[REPO].reruns == [] and gh.repos[REPO].dispatches == [
        {"event_type": "cml-action-rerun", "client_payload": {"run_id": "4242"}}]
    nothing_left(gh, aws_cloud)
    # the companion workflow (repository_dispatch) waits for the run to complete, then re-runs its failed jobs
    gh.add_run(REPO, 4242, conclusion="failure", completes_after=3)
    event = tmp_path / "dispatch.json"
    event.write_text(json.dumps({"action": "cml-action-rerun", "client_payload": {"run_id": "4242"}}))
    companion = {**env, "GITHUB_EVENT_NAME": "repository_dispatch", "GITHUB_EVENT_PATH": str(event)}
    out = cli(companion, "runner-teardown")
    assert out.returncode == 0, out.stderr
    assert gh.repos[REPO].reruns == [4242] and "re-running the failed jobs of run 4242" in out.stdout


def test_teardown_refuses_a_label_that_is_not_a_launch_label(gh, aws_cloud, tmp_path: Path):
    out = cli(cli_env(gh, aws_cloud, tmp_path), "runner-teardown", "--cloud", "aws", "--cloud-region", "us-west-2",
              "--runner-label", "")
    assert out.returncode == 2 and "not a label printed by runner-launch" in out.stderr


def test_sweep_reconciles_both_directions(gh, cloud, tmp_path: Path):
    gh.runner_online_after = 0
    env = cli_env(gh, cloud, tmp_path)
    assert cli(env, *launch_args(cloud)).returncode == 0
    (vm,) = cloud.instances()
    # its runner vanished (e.g. removed by hand): the VM is an orphan
    for runner in gh.runners(REPO):
        del gh.repos[REPO].runners[runner.id]
    # and a runner of ours whose VM never came
    from cml_action.runners.github_registry import GitHubRunnerRegistry

    GitHubRunnerRegistry(gh.api_url, REPO, ADMIN).register("cml-20250101000000-0a0b0c",
                                                            ["cml-20250101000000-0a0b0c", f"cml-cloud-{cloud.cloud}"])
    # someone else's runner is never touched
    GitHubRunnerRegistry(gh.api_url, REPO, ADMIN).register("build-box", ["linux"])
    out = cli({**env, "CML_SWEEP_GRACE": "0"}, "runner-sweep", "--cloud", cloud.cloud, "--cloud-region", cloud.region)
    assert out.returncode == 0, out.stderr
    assert f"deleted VM {vm['id']}" in out.stdout and "removed runner cml-20250101000000-0a0b0c" in out.stdout
    assert cloud.leftovers() == []
    assert [r.name for r in gh.runners(REPO)] == ["build-box"]
