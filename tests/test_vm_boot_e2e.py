"""What ships to the VM, booted: for every cloud x forge, `runner-launch` runs against the stand-ins, the user-data /
startup-script / custom data is read back from the cloud stand-in exactly as the provider sent it, checked with
`bash -n` and shellcheck, and booted in a sandbox VM (tests/standins/vm): instance metadata, the cloud's secret
hand-over, a stub runner package, stub apt/docker/shutdown. One job runs, the hand-over is read and destroyed at its
source, the registration is never on a command line, the machine powers itself off.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cml_action.runners import startup
from repo_helpers import ROOT
from standins.aws.imds import Imds
from standins.vm.sandbox import VmSandbox

REPO = "octo/models"
ADMIN = "ghp_runnerAdminToken0000000000000000000"
PID, PATH = 42, "ml/models"
GL_TOKEN = "glpat-runnerAdmin00000000000"
MIRROR = "https://runner-mirror.example.org/actions-runner-linux-x64-2.337.0.tar.gz"


@pytest.fixture(params=["aws", "gcp", "azure"])
def cloud(request):
    return request.getfixturevalue(f"{request.param}_cloud")


@pytest.fixture()
def vm(tmp_path: Path):
    sandbox = VmSandbox(tmp_path)
    yield sandbox
    sandbox.close()


def _base_env(cloud) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "AWS_", "AZURE_", "GOOGLE_", "INPUT_", "CML_", "CI_", "GITLAB_"))}
    return {**keep, **cloud.env, "CML_POLL_INTERVAL": "0.05", "CML_RETRY_BACKOFF": "0.01"}


class Forge:
    """The forge side of one launch: its stand-in, the CLI environment, the registration the VM must receive."""

    def __init__(self, kind: str, request, tmp: Path, cloud, vm: VmSandbox) -> None:
        self.kind, self.tmp, self.cloud = kind, tmp, cloud
        env = _base_env(cloud)
        if kind == "github":
            self.gh = request.getfixturevalue("github_standin")
            self.gh.add_repo(REPO)
            self.gh.add_token(ADMIN, {"administration": "write", "actions": "write", "metadata": "read"})
            self.gh.runner_online_after = 0
            digest = vm.github_runner(MIRROR)
            env.update({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": self.gh.api_url,
                        "GITHUB_SERVER_URL": self.gh.server_url, "GITHUB_RUN_ID": "4242",
                        "GITHUB_OUTPUT": str(tmp / "out.txt"), "CML_RUNNER_PACKAGE_URL": MIRROR,
                        "CML_RUNNER_PACKAGE_SHA256": digest})
            self.token = ADMIN
        else:
            self.gl = request.getfixturevalue("gitlab_standin")
            self.gl.add_project(PID, PATH)
            self.gl.add_token(GL_TOKEN, ("api", "create_runner", "manage_runner"))
            self.gl.runners_come_online = True
            package = startup.runner_package("gitlab")
            vm.gitlab_runner(package.url, package.sha256)
            env.update({"GITLAB_CI": "true", "CI_API_V4_URL": self.gl.api_url, "CI_SERVER_URL": self.gl.server_url,
                        "CI_PROJECT_ID": str(PID), "CI_PROJECT_PATH": PATH, "CI_PIPELINE_ID": "31",
                        "CI_PIPELINE_IID": "7", "CI_COMMIT_SHA": "0" * 40, "CI_COMMIT_REF_NAME": "main",
                        "CI_DEFAULT_BRANCH": "main", "CML_TOKEN": GL_TOKEN})
            self.token = GL_TOKEN
        self.env = env

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), *args, "--token", self.token], env=self.env,
                              capture_output=True, text=True, timeout=180, cwd=self.tmp, check=False)

    def registration(self) -> str:
        if self.kind == "github":
            (runner,) = self.gh.runners(REPO)
            return runner.jit_config
        (runner,) = self.gl.runners.values()
        return runner.token

    def runners(self) -> list:
        return self.gh.runners(REPO) if self.kind == "github" else list(self.gl.runners.values())


def _launch(forge: Forge, cloud, *extra: str) -> str:
    out = forge.cli("runner-launch", "--cloud", cloud.cloud, "--cloud-region", cloud.region, "--cloud-gpu", "t4",
                    "--runner-idle-timeout", "2m", *extra)
    assert out.returncode == 0, out.stderr + out.stdout
    label = re.search(r"use (?:runs-on: \[self-hosted, |tags: \[)([\w-]+)\]", out.stdout)
    assert label, out.stdout
    return label.group(1)


def _check_script(text: str, tmp: Path) -> None:
    path = tmp / "as-read-back.sh"
    path.write_text(text)
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    lint = subprocess.run(["shellcheck", "-s", "bash", "-S", "warning", str(path)], capture_output=True, text=True,
                          check=False)
    assert lint.returncode == 0, lint.stdout


def _wire(cloud, machine: dict, vm: VmSandbox) -> tuple[tuple[str, ...], Imds | None]:
    """Point the VM's real cloud addresses at this cloud's stand-ins; return the agent scripts the cloud runs."""
    if cloud.cloud == "aws":
        profile = machine["raw"]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
        imds = Imds(profile, machine["id"])
        vm.metadata(imds.port)
        vm.hostname(f"ssm.{cloud.region}.amazonaws.com", 443, int(cloud.moto_url.rsplit(":", 1)[1]), tls=True)
        return (), imds
    if cloud.cloud == "gcp":
        cloud.standin.vm_identity = {"zone": machine["zone"], "name": machine["name"]}
        port = int(cloud.standin.url.rsplit(":", 1)[1])
        vm.metadata(port, names=("metadata.google.internal",))
        for host in ("compute.googleapis.com", "secretmanager.googleapis.com"):
            vm.hostname(host, 443, port, tls=True)
        vm.loopback(cloud.env["CML_GCP_SECRETMANAGER_ENDPOINT"])  # the launcher's endpoint, as the VM was told
        return (), None
    cloud.standin.vm = {"group": machine["id"], "name": machine["name"]}
    port = int(cloud.standin.url.rsplit(":", 1)[1])
    vm.metadata(port, upstream_tls=True)
    vm.hostname("management.azure.com", 443, port, tls=True, upstream_tls=True)
    # the Azure agent runs the CustomScript extension's protected script on the VM, as root
    return tuple(cloud.secrets().values()), None


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_shipped_user_data_boots_runs_one_job_and_powers_off(kind, cloud, vm, request, tmp_path: Path):
    forge = Forge(kind, request, tmp_path, cloud, vm)
    chosen = ("--runner-label", f"cml-{PID}-7") if kind == "gitlab" else ()
    label = _launch(forge, cloud, *chosen)
    if chosen:
        assert label == chosen[1]
    registration = forge.registration()
    (machine,) = cloud.instances()
    user_data = machine["startup_script"]  # as the cloud stand-in holds it
    assert registration not in user_data and forge.token not in user_data
    _check_script(user_data, tmp_path)
    agents, imds = _wire(cloud, machine, vm)
    try:
        boot = vm.boot(user_data, gpu=True, agent_scripts=agents, secrets=(registration, forge.token), timeout=90)
    finally:
        if imds is not None:
            imds.stop()
    assert boot.powered_off, boot.console[-3000:]
    assert boot.poweroff.strip() == "shutdown -h now", boot.console[-3000:]
    assert "runner exited with status 0 after its job" in boot.log, boot.console[-3000:]
    assert boot.cmdline_leaks == []  # no process ever had the registration (or the token) on its command line
    # provisioned: Docker engine from the archive, the NVIDIA toolkit configured as a docker runtime
    assert "install -y --no-install-recommends" in boot.apt and "docker.io" in boot.apt
    assert "nvidia-container-toolkit" in boot.apt and "nvidia-ctk runtime configure --runtime=docker" in boot.docker
    if kind == "github":
        assert f"jitconfig={registration}" in boot.runner and "user=cmlrunner" in boot.runner
        assert "args=\n" in boot.runner  # nothing on its command line
        assert "cmlrunner:" in boot.users and "docker" in Path(vm.tmp / "root/etc/group").read_text()
    else:
        args = re.findall(r"^arg=(.*)$", boot.runner, re.M)
        assert f"token={registration}" in boot.runner and "user=root" in boot.runner
        assert args[:1] == ["run-single"] and "--token" not in args and registration not in args
        assert {"--executor", "docker", "--docker-gpus", "all", "--max-builds", "1"} <= set(args)
        # jobs clone into a folder the idle watchdog can see
        assert args[args.index("--docker-volumes") + 1] == "/opt/cml-runner/builds:/opt/cml-runner/builds"
    # the hand-over: read once, destroyed at the source
    assert cloud.secrets() == {}
    if cloud.cloud == "gcp":
        assert cloud.instances() == []  # the VM deleted its own instance before shutting down
    if cloud.cloud == "azure":
        assert cloud.leftovers() == []  # the VM deleted its own resource group
    out = forge.cli("runner-teardown", "--cloud", cloud.cloud, "--cloud-region", cloud.region, "--runner-label", label)
    assert out.returncode == 0, out.stderr
    assert cloud.leftovers() == [] and forge.runners() == []


@pytest.mark.parametrize("label", ["gpu", "cml-cloud-aws", "cml-A", "cml-x_y", "cml-" + "a" * 61])
def test_a_chosen_label_that_could_select_other_runners_is_refused_before_anything_exists(label, aws_cloud, vm,
                                                                                        request, tmp_path: Path):
    forge = Forge("gitlab", request, tmp_path, aws_cloud, vm)
    out = forge.cli("runner-launch", "--cloud", "aws", "--cloud-region", aws_cloud.region, "--runner-label", label)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith("(not cml-cloud-...)")
    assert aws_cloud.leftovers() == [] and forge.runners() == []


@pytest.mark.parametrize("url, digest", [("http://mirror.example.org/r.tar.gz", "a" * 64),
                                         ("https://mirror.example.org/r.tar.gz", "not-a-digest"),
                                         ("", "a" * 64)])
def test_a_runner_package_mirror_needs_https_and_a_digest(url, digest, aws_cloud, vm, request, tmp_path: Path):
    forge = Forge("github", request, tmp_path, aws_cloud, vm)
    forge.env.update({"CML_RUNNER_PACKAGE_URL": url, "CML_RUNNER_PACKAGE_SHA256": digest})
    out = forge.cli("runner-launch", "--cloud", "aws", "--cloud-region", aws_cloud.region)
    assert out.returncode == 2 and "CML_RUNNER_PACKAGE_URL (an https URL)" in out.stderr
    assert aws_cloud.leftovers() == [] and forge.runners() == []
