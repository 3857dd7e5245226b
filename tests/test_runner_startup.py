"""The VM bootstrap script, rendered for real and booted in the sandbox VM (tests/standins/vm): stub runner package,
stub apt/docker/shutdown, a trivial hand-over snippet.

Proves the three ways a machine dies (after its job, idle, at max lifetime), that a tampered package or a missing
secret also powers off, what gets provisioned on CPU and GPU images, and that the script as rendered for every cloud
(with that cloud's own snippets, heredocs included) is valid bash that shellcheck accepts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cml_action.clouds import aws, azure, gcp
from cml_action.clouds.base import MachineSpec
from cml_action.runners import startup
from standins.vm.sandbox import VmSandbox

NAME = "cml-20261123000000-abcdef"
MIRROR = "https://runner-mirror.example.org/actions-runner.tar.gz"
SECRET_VALUE = "JITCONFIG-one-job-secret"
POWEROFF = "shutdown -h now"
JOBS = {
    "job": VmSandbox.ONE_JOB,
    "idle": "sleep 60\n",
    "long": "mkdir -p _diag && touch _diag/Worker_20261123.log && sleep 60\n",
}


@pytest.fixture()
def vm(tmp_path: Path):
    sandbox = VmSandbox(tmp_path)
    yield sandbox
    sandbox.close()


def _handover(vm: VmSandbox) -> str:
    """A hand-over snippet for the sandbox: print the secret, destroy it at its "source" (a file the test sees)."""
    source = vm.record / "handover"
    source.write_text(SECRET_VALUE)
    return f'cat {source}\nrm -f {source}'


def _render(vm: VmSandbox, forge: str = "github", job: str = "job", *, idle: int = 30, lifetime: int = 60,
            secret: str | None = None, digest: str | None = None) -> str:
    if forge == "github":
        sha = vm.github_runner(MIRROR, JOBS[job])
        package = startup.Package(MIRROR, digest or sha)
    else:
        package = startup.runner_package("gitlab")
        jobs = {"job": VmSandbox.GITLAB_JOB, "long": "mkdir /opt/cml-runner/builds/0 && sleep 60\n", "idle": "sleep 60\n"}
        vm.gitlab_runner(package.url, package.sha256, tampered=digest is not None, job=jobs[job])
    return startup.render(forge=forge, name=NAME, idle_timeout_s=idle, max_lifetime_s=lifetime,
                          secret_snippet=_handover(vm) if secret is None else secret, poweroff_snippet=POWEROFF,
                          forge_url="https://gitlab.example.com", package=package)


def test_powers_off_after_its_one_job_and_the_secret_is_consumed(vm):
    script = _render(vm)
    boot = vm.boot(script, secrets=(SECRET_VALUE,))
    assert boot.poweroff.strip() == POWEROFF
    assert "runner exited with status 0 after its job" in boot.log
    assert f"jitconfig={SECRET_VALUE}" in boot.runner and "args=\n" in boot.runner
    assert boot.cmdline_leaks == []
    assert not (vm.record / "handover").exists()  # destroyed at the source
    assert SECRET_VALUE not in script


def test_powers_off_when_no_job_starts_within_the_idle_timeout(vm):
    boot = vm.boot(_render(vm, job="idle", idle=1), timeout=20)
    assert boot.poweroff.strip() == POWEROFF
    assert "no job started within 1s" in boot.log


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_running_job_is_not_idle_but_max_lifetime_still_wins(vm, forge):
    boot = vm.boot(_render(vm, forge, job="long", idle=1, lifetime=4), docker=True, timeout=20)
    assert "maximum lifetime of 4s reached" in boot.log
    assert "no job started" not in boot.log
    assert boot.poweroff.strip() == POWEROFF


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_tampered_package_powers_off_before_anything_runs(vm, forge):
    boot = vm.boot(_render(vm, forge, digest="0" * 64), timeout=20)
    assert boot.log.count("bootstrap failed") == 1 and boot.poweroff == POWEROFF + "\n"
    assert boot.runner == ""
    assert (vm.record / "handover").exists()  # the registration was never fetched


def test_no_handed_over_secret_powers_off(vm):
    boot = vm.boot(_render(vm, secret="true"), timeout=20)
    assert "no registration was handed over" in boot.log and boot.poweroff.strip() == POWEROFF
    assert boot.runner == ""


def test_a_cpu_image_without_docker_gets_the_engine_and_no_gpu_toolkit(vm):
    boot = vm.boot(_render(vm, "gitlab"), gpu=False, timeout=30)
    assert "runner exited with status 0 after its job" in boot.log
    assert "docker.io" in boot.apt and "nvidia-container-toolkit" not in boot.apt
    args = [line[4:] for line in boot.runner.splitlines() if line.startswith("arg=")]
    assert ["--executor", "docker"] == args[args.index("--executor"):args.index("--executor") + 2]
    assert "--docker-gpus" not in args and "--token" not in args


def test_an_image_with_docker_and_git_installs_only_the_runners_own_dependencies(vm):
    boot = vm.boot(_render(vm), docker=True, timeout=30)
    assert "runner exited with status 0 after its job" in boot.log
    assert boot.apt == "installdependencies.sh as root\n"  # actions/runner's script, from its package


def test_a_gpu_image_gets_the_nvidia_runtime_and_gitlab_jobs_get_the_gpus(vm):
    boot = vm.boot(_render(vm, "gitlab"), gpu=True, docker=True, timeout=30)
    assert "runner exited with status 0 after its job" in boot.log
    assert "install -y --no-install-recommends nvidia-container-toolkit" in boot.apt and "docker.io" not in boot.apt
    assert "nvidia-ctk runtime configure --runtime=docker" in boot.docker
    assert f"token={SECRET_VALUE}" in boot.runner and "arg=--docker-gpus\narg=all" in boot.runner
    assert "NVIDIA runtime" in boot.log


SPEC = MachineSpec(name=NAME, region="us-west-2", gpu="t4", gpu_count=1, image="", disk_gb=100, subnet="",
                   permission_set="", tags={}, startup_script="")
PROVIDERS = {"aws": lambda: aws.AwsProvider({}, "us-west-2"), "gcp": lambda: gcp.GcpProvider({}, "us-central1"),
             "azure": lambda: azure.AzureProvider({}, "westeurope")}


@pytest.mark.parametrize("forge", ["github", "gitlab"])
@pytest.mark.parametrize("cloud", sorted(PROVIDERS))
def test_the_script_rendered_for_each_cloud_is_valid_bash(tmp_path: Path, cloud: str, forge: str):
    """With the cloud's own snippets (the AWS one carries a Python heredoc), not a stand-in snippet."""
    provider = PROVIDERS[cloud]()
    script = startup.render(forge=forge, name=NAME, idle_timeout_s=300, max_lifetime_s=3600,
                            secret_snippet=provider.secret_snippet(SPEC), poweroff_snippet=provider.poweroff_snippet(SPEC),
                            forge_url="https://gitlab.example.com")
    path = tmp_path / "startup.sh"
    path.write_text(script)
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    lint = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout
    assert provider.secret_snippet(SPEC).strip("\n") in script  # verbatim, not re-indented
    assert startup.GITHUB_RUNNER_SHA256["x64"] in script or forge == "gitlab"


def test_a_value_that_looks_like_a_placeholder_is_not_substituted():
    script = startup.render(forge="github", name="cml-@@SECRET@@", idle_timeout_s=1, max_lifetime_s=2,
                            secret_snippet="echo the-secret-snippet", poweroff_snippet=POWEROFF)
    assert script.count("echo the-secret-snippet") == 1 and "RUNNER_NAME=cml-@@SECRET@@" in script


def test_a_failure_inside_a_command_substitution_powers_off_once(vm):
    package = startup.runner_package("gitlab")
    vm.serve_file(package.url, b"#!/bin/sh\nexit 0\n")  # and no checksum list: its download fails (404)
    script = startup.render(forge="gitlab", name=NAME, idle_timeout_s=30, max_lifetime_s=60,
                            secret_snippet=_handover(vm), poweroff_snippet=POWEROFF, forge_url="https://gitlab.example.com")
    boot = vm.boot(script, docker=True, timeout=40)
    assert boot.log.count("powering off") == 1 and "bootstrap failed" in boot.log, boot.seconds
    assert boot.poweroff == POWEROFF + "\n" and boot.runner == "" and boot.seconds < 30, boot.seconds
