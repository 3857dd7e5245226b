"""`train-image`: training in the user's own image through the Engine API stand-in, via the real docker SDK."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from repo_helpers import ROOT, GIT_ENV, example_repo, run_cli


def engine_env(engine) -> dict[str, str]:
    return {"DOCKER_HOST": engine.url.replace("http://", "tcp://"), "TRAIN_SEED": "7",
            "GITHUB_TOKEN": "ghs_mustNotLeakIntoTraining", "AWS_SECRET_ACCESS_KEY": "mustNotLeakEither"}


def test_trains_in_the_image_with_only_allowed_variables_and_removes_it(docker_engine, tmp_path: Path):
    repo = example_repo(tmp_path)
    docker_engine.script.lines = ["epoch 1 loss 0.5", "epoch 2 loss 0.3", "ERR: a warning on stderr"]
    out = run_cli(repo, "--run", "python train.py", "--train-image", "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
                  "--train-env", "TRAIN_SEED AWS_REGION", "--metrics", "metrics.json", "--notebook-diff", "false",
                  env=engine_env(docker_engine))
    assert out.returncode == 0, out.stderr
    assert docker_engine.pulled == ["pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"]
    config = _created(docker_engine)[-1]  # the container that ran (this engine has no GPU: the second one)
    assert config["Cmd"] == ["/bin/sh", "-c", "python train.py"] and config["WorkingDir"] == str(repo)
    assert sorted(config["Env"]) == ["PYTHONUNBUFFERED=1", "TRAIN_SEED=7"]
    assert config["HostConfig"]["Binds"] == [f"{repo}:{repo}:rw"]
    assert "epoch 2 loss 0.3" in out.stdout and "a warning on stderr" in out.stdout
    assert docker_engine.containers == {} and len(docker_engine.removed) == 2
    assert "Training in pytorch/pytorch" in out.stdout


def test_a_failing_training_propagates_its_exit_code_and_log_tail(docker_engine, tmp_path: Path):
    repo = example_repo(tmp_path)
    docker_engine.script.lines = ["loading", "RuntimeError: CUDA out of memory"]
    docker_engine.script.exit_code = 3
    out = run_cli(repo, "--run", "python train.py", "--train-image", "python:3.11-slim", "--metrics", "metrics.json",
                  "--notebook-diff", "false", env=engine_env(docker_engine))
    assert out.returncode == 1
    report = (repo / "cml-report" / "report.md").read_text()
    assert "training failed** (exit 3)" in report and "CUDA out of memory" in report
    assert docker_engine.containers == {}


def test_inside_a_container_the_workspace_is_mounted_from_where_the_engine_sees_it(docker_engine, tmp_path: Path):
    repo = example_repo(tmp_path)
    docker_engine.self_mounts = [{"Source": "/home/runner/work/models/models", "Destination": str(repo),
                                  "Type": "bind"}]
    env = {**engine_env(docker_engine), "CML_CONTAINER_ID": "0123456789ab"}
    out = run_cli(repo, "--run", "python train.py", "--train-image", "python:3.11-slim", "--metrics", "metrics.json",
                  "--notebook-diff", "false", env=env)
    assert out.returncode == 0, out.stderr
    assert {c["HostConfig"]["Binds"][0] for c in _created(docker_engine)} == {f"/home/runner/work/models/models:{repo}:rw"}


def test_sigterm_while_training_removes_the_container(docker_engine, tmp_path: Path):
    repo = example_repo(tmp_path)
    docker_engine.script.lines = [f"step {i}" for i in range(100)]
    docker_engine.script.delay = 0.1
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CML_", "INPUT_"))}
    env.update(GIT_ENV)
    env.update(engine_env(docker_engine))
    proc = subprocess.Popen([sys.executable, str(ROOT / "entrypoint.py"), "--run", "python train.py", "--train-image",
                             "python:3.11-slim", "--metrics", "metrics.json"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(c.state == "running" for c in docker_engine.containers.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert docker_engine.containers == {} and len(docker_engine.removed) == 2  # the GPU attempt and the one killed


def test_no_engine_is_a_one_line_error(tmp_path: Path):
    repo = example_repo(tmp_path)
    out = run_cli(repo, "--run", "python train.py", "--train-image", "python:3.11-slim",
                  env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert out.returncode == 2
    assert out.stderr.strip().startswith("cml-action: error: train-image needs a Docker engine (tcp://127.0.0.1:9)")
    assert "Traceback" not in out.stderr


def _created(engine) -> list[dict]:
    return [json.loads(r.body) for r in engine.requests if r.path.endswith("/containers/create")]


def test_a_gpu_host_gets_a_device_request_for_every_gpu(docker_engine, tmp_path: Path):
    """Nothing in our own environment tells us about the engine's host (no nvidia-smi, no /dev/nvidia0 here): the
    device request goes to the engine, which gives the GPUs."""
    repo = example_repo(tmp_path)
    docker_engine.gpu_host = True
    out = run_cli(repo, "--run", "python train.py", "--train-image", "python:3.11-slim", "--metrics", "metrics.json",
                  "--notebook-diff", "false", env=engine_env(docker_engine))
    assert out.returncode == 0, out.stderr
    (config,) = _created(docker_engine)
    assert config["HostConfig"]["DeviceRequests"] == [{"Driver": "", "Count": -1, "DeviceIDs": [],
                                                      "Capabilities": [["gpu"]], "Options": {}}]
    assert docker_engine.started == [config["HostConfig"]]
    report = (repo / "cml-report" / "report.md").read_text()
    assert "Docker host: 8 CPUs, 32 GiB, GPU: every GPU of the host" in report and "CPU only" not in report


def test_an_engine_without_gpu_support_is_retried_without_and_the_report_says_cpu(docker_engine, tmp_path: Path):
    repo = example_repo(tmp_path)
    docker_engine.script.lines = ["epoch 1 loss 0.5"]
    out = run_cli(repo, "--run", "python train.py", "--train-image", "python:3.11-slim", "--metrics", "metrics.json",
                  "--notebook-diff", "false", env=engine_env(docker_engine))
    assert out.returncode == 0, out.stderr
    first, second = _created(docker_engine)
    assert first["HostConfig"]["DeviceRequests"] and not second["HostConfig"].get("DeviceRequests")
    assert first["Cmd"] == second["Cmd"] and first["HostConfig"]["Binds"] == second["HostConfig"]["Binds"]
    assert len(docker_engine.started) == 1 and "epoch 1 loss 0.5" in out.stdout
    assert 'the Docker engine gives no GPU (could not select device driver "" with capabilities: [[gpu]])' in out.stdout
    report = (repo / "cml-report" / "report.md").read_text()
    assert "CPU only (the engine gives no GPU), in python:3.11-slim" in report
    assert docker_engine.containers == {} and len(docker_engine.removed) == 2  # the refused one is removed too
