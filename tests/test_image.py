"""The image, built for real with podman (no Docker engine here) and started the way GitHub's runner starts a
container action.

tests/image/build_local.sh builds the CPU target from a debootstrapped bookworm base (once per content hash) and
checks the container-action rules on the result. The runner's part is restated from actions/runner
(Handlers/ContainerActionHandler.cs, Container/DockerCommandManager.cs): the image named by action.yml's
`runs.image`, `docker run --workdir /github/workspace --rm -e NAME... -e GITHUB_ACTIONS=true -e CI=true` with five
bind mounts (the docker socket, the runner's temp folder at /github/runner_temp, its _github_home at /github/home,
_github_workflow at /github/workflow, _runner_file_commands at /github/file_commands, the workspace at
/github/workspace), every environment value translated from host to container paths, inputs as INPUT_<NAME> with the
defaults of action.yml, HOME=/github/home, no --gpus. tests/image/docker_run.py carries that command out with chroot.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from repo_helpers import ROOT, example_repo, git

OWNER_REPO = "octo/models"
TOKEN = "ghs_imageTestToken00000000000000000000"
CACHE = Path(os.environ.get("CML_IMAGE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "cml-action-image")
PODMAN = ["podman", "--storage-driver", "vfs", "--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run")]


def build(target: str) -> dict[str, str]:
    out = subprocess.run([str(ROOT / "tests" / "image" / "build_local.sh"), target], capture_output=True, text=True,
                         timeout=2400)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    tag = re.search(r"^image: (\S+)", out.stdout, re.M)
    size = re.search(r"^image size: (\d+) bytes", out.stdout, re.M)
    assert tag and size and "checks: ok" in out.stdout, out.stdout[-2000:]
    return {"tag": tag.group(1), "size": size.group(1), "log": out.stdout}


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """The CPU image, also tagged as the reference action.yml runs, as a runner that pulled it would have it."""
    image = build("cpu")
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    ref = action["runs"]["image"].removeprefix("docker://")
    subprocess.run([*PODMAN, "tag", image["tag"], ref], check=True)
    return {**image, "ref": ref}


def test_cpu_image_is_under_one_gigabyte(built):
    assert int(built["size"]) <= 1_000_000_000, built["log"]


def translate(value: str, mappings: list[tuple[Path, str]]) -> str:
    """ContainerInfo.TranslateToContainerPath: the first mapping whose host path is the value or its prefix."""
    for host, container in mappings:
        if value == str(host):
            return container
        if value.startswith(str(host) + "/"):
            return container + value[len(str(host)):]
    return value


def run_as_container_action(ref: str, workspace: Path, temp: Path, with_: dict[str, str], job_env: dict[str, str],
                            event: dict, socket: Path) -> tuple[subprocess.CompletedProcess, dict[str, Path]]:
    """One `uses: cml-action/cml-action@…` step, as the runner carries it out on the host."""
    home, workflow, commands = temp / "_github_home", temp / "_github_workflow", temp / "_runner_file_commands"
    for folder in (home, workflow, commands):
        folder.mkdir(parents=True, exist_ok=True)
    (workflow / "event.json").write_text(json.dumps(event))
    suffix = uuid.uuid4()
    files = {name: commands / f"{prefix}_{suffix}" for name, prefix in
             (("GITHUB_OUTPUT", "set_output"), ("GITHUB_STEP_SUMMARY", "step_summary"), ("GITHUB_ENV", "set_env"),
              ("GITHUB_PATH", "add_path"), ("GITHUB_STATE", "save_state"))}
    for path in files.values():
        path.touch()
    env = {**job_env, **{k: str(v) for k, v in files.items()}, "GITHUB_EVENT_PATH": str(workflow / "event.json"),
           "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp), "HOME": str(home)}
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    for name, spec in action["inputs"].items():  # given, else the declared default (expressions evaluated)
        value = with_.get(name, str(spec.get("default", "")).replace("${{ github.token }}", job_env["GITHUB_TOKEN"]))
        if name in with_ or "default" in spec:
            env[f"INPUT_{name.upper()}"] = value
    env.pop("GITHUB_TOKEN")  # not in a step's environment unless the workflow puts it there
    mappings = [(workspace, "/github/workspace"), (commands, "/github/file_commands"), (workflow, "/github/workflow"),
                (home, "/github/home"), (temp, "/github/runner_temp")]
    container_env = {k: translate(v, mappings) for k, v in env.items()}
    argv = ["--name", f"cml{uuid.uuid4().hex[:8]}", "--label", "runner-test", "--workdir", "/github/workspace", "--rm"]
    for name in container_env:
        argv += ["-e", name]
    argv += ["-e", "GITHUB_ACTIONS=true", "-e", "CI=true"]
    for source, target in [(socket, "/var/run/docker.sock"), (temp, "/github/runner_temp"), (home, "/github/home"),
                           (workflow, "/github/workflow"), (commands, "/github/file_commands"),
                           (workspace, "/github/workspace")]:
        argv += ["-v", f"{source}:{target}"]
    argv.append(ref)
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "image" / "docker_run.py"), *argv], capture_output=True,
                         text=True, timeout=900, env={"PATH": os.environ["PATH"], **container_env, "CML_IMAGE_CACHE": str(CACHE)})
    return out, files


def job_env(github_standin, head: str) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_API_URL": github_standin.api_url,
            "GITHUB_SERVER_URL": github_standin.server_url, "GITHUB_REPOSITORY": OWNER_REPO,
            "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": "f" * 40, "GITHUB_HEAD_REF": "feature",
            "GITHUB_BASE_REF": "main", "GITHUB_REF": "refs/pull/2/merge", "GITHUB_RUN_ID": "4242",
            "GITHUB_ACTOR": "octocat", "RUNNER_OS": "Linux", "GITHUB_TOKEN": TOKEN}


def test_the_action_runs_as_the_runner_starts_it_and_posts_from_inside_the_image(built, github_standin,
                                                                                 tmp_path: Path):
    github_standin.add_repo(OWNER_REPO)
    github_standin.add_token(TOKEN, {"contents": "write", "pull_requests": "write", "metadata": "read"})
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    github_standin.add_pull(OWNER_REPO, 2, head_sha=head, head_ref="feature", base_ref="main")
    subprocess.run(["chown", "-R", "1001:1001", str(repo)], check=True)  # the runner user's checkout, not root's
    temp = tmp_path / "_temp"
    socket = tmp_path / "docker.sock"
    socket.touch()
    event = {"pull_request": {"number": 2, "head": {"sha": head, "ref": "feature"}, "base": {"ref": "main"}}}
    with_ = {"run": "python train.py", "metrics": "metrics.json", "params": "params.yaml",
             "plots": "confusion_matrix.png\nimportance.csv", "title": "Image report"}
    out, files = run_as_container_action(built["ref"], repo, temp, with_, job_env(github_standin, head), event, socket)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "trained on" in out.stdout  # the example trained inside the image, output streamed

    (comment,) = github_standin.repos[OWNER_REPO].comments.values()
    assert "## Image report" in comment["body"] and "?raw=true" in comment["body"]
    assert "| **model.max_depth** |" in comment["body"]  # compared with main inside the container
    outputs = files["GITHUB_OUTPUT"].read_text()
    # relative to the workspace, so later steps on the host (upload-artifact...) find it under GITHUB_WORKSPACE
    assert re.search(r"^report-path<<(\S+)\ncml-report/report.md\n\1$", outputs, re.M), outputs
    url = f"{github_standin.server_url}/{OWNER_REPO}/pull/2#issuecomment-{comment['id']}"
    assert re.search(r"^comment-url<<(\S+)\n" + re.escape(url) + r"\n\1$", outputs, re.M), outputs
    assert "## Image report" in files["GITHUB_STEP_SUMMARY"].read_text()
    assert (repo / "cml-report" / "report.md").is_file()  # written through the workspace mount
    # drawn inside the image by its drawing process, with the font it ships
    assert "Bar chart of `importance.csv`" in comment["body"]
    from PIL import Image

    with Image.open(repo / "cml-report" / "plots" / "importance.csv.png") as drawn:
        assert drawn.size == (800, 450) and len(drawn.convert("RGB").getcolors(1 << 16) or []) > 50
    assert TOKEN not in outputs + files["GITHUB_STEP_SUMMARY"].read_text() + out.stderr
    assert [line for line in out.stdout.splitlines() if TOKEN in line] == [f"::add-mask::{TOKEN}"]  # masked first


@pytest.mark.parametrize("gpu_host", [True, False], ids=["gpu-host", "engine-without-gpus"])
def test_train_image_from_inside_the_action_asks_the_hosts_engine_for_gpus(built, github_standin, docker_engine,
                                                                          tmp_path: Path, gpu_host: bool):
    """The action's container has no GPU and no nvidia-smi; the engine behind the mounted socket decides."""
    github_standin.add_repo(OWNER_REPO)
    github_standin.add_token(TOKEN, {"contents": "write", "pull_requests": "write", "metadata": "read"})
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    github_standin.add_pull(OWNER_REPO, 3, head_sha=head, head_ref="feature", base_ref="main")
    subprocess.run(["chown", "-R", "1001:1001", str(repo)], check=True)
    docker_engine.gpu_host = gpu_host
    docker_engine.script.lines = ["epoch 1 loss 0.40", "trained in the user's image"]
    # What dockerd answers about the action's own container: its workspace mount, from the host's path.
    docker_engine.self_mounts = [{"Type": "bind", "Source": str(repo), "Destination": "/github/workspace"}]
    socket = docker_engine.serve_unix(tmp_path / "docker.sock")
    event = {"pull_request": {"number": 3, "head": {"sha": head, "ref": "feature"}, "base": {"ref": "main"}}}
    with_ = {"run": "python train.py", "train-image": "python:3.11-slim", "metrics": "metrics.json",
             "title": "Image GPU report"}
    out, files = run_as_container_action(built["ref"], repo, tmp_path / "_temp", with_,
                                         job_env(github_standin, head), event, socket)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "trained in the user's image" in out.stdout
    created = [json.loads(r.body) for r in docker_engine.requests if r.path.endswith("/containers/create")]
    assert created[0]["HostConfig"]["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
    assert {c["HostConfig"]["Binds"][0] for c in created} == {f"{repo}:/github/workspace:rw"}
    assert len(created) == (1 if gpu_host else 2) and len(docker_engine.started) == 1
    (comment,) = github_standin.repos[OWNER_REPO].comments.values()
    wanted = "GPU: every GPU of the host" if gpu_host else "CPU only (the engine gives no GPU), in python:3.11-slim"
    assert wanted in comment["body"]


def test_the_gpu_target_is_the_cpu_image_plus_the_nvidia_runtime_variables(built):
    """Built for real too (it shares every layer but one); no GPU here, so what is checked is what the NVIDIA
    container runtime reads from the image, and that it starts."""
    gpu = build("gpu")
    config = json.loads(subprocess.run([*PODMAN, "image", "inspect", "--format", "{{json .Config}}", gpu["tag"]],
                                       check=True, capture_output=True, text=True).stdout)
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    cpu = json.loads(subprocess.run([*PODMAN, "image", "inspect", "--format", "{{json .Config}}", built["tag"]],
                                    check=True, capture_output=True, text=True).stdout)
    assert not any(item.startswith("NVIDIA_") for item in cpu["Env"])
    assert config["Entrypoint"] == cpu["Entrypoint"] == ["/app/entrypoint.py"]
    assert abs(int(gpu["size"]) - int(built["size"])) < 10_000_000
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "image" / "docker_run.py"), "--rm", gpu["tag"],
                          "--version"], capture_output=True, text=True, timeout=600,
                         env={"PATH": os.environ["PATH"], "CML_IMAGE_CACHE": str(CACHE)})
    assert out.returncode == 0 and out.stdout.strip() == f"cml-action {version()}", out.stdout + out.stderr


def version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
