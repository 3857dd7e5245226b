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
    (created,) = [r for r in docker_engine.requests if r.path.endswith("/containers/create")]
    config = json.loads(created.body)
    assert config["Cmd"] == ["/bin/sh", "-c", "python train.py"] and config["WorkingDir"] == str(repo)
    assert sorted(config["Env"]) == ["PYTHONUNBUFFERED=1", "TRAIN_SEED=7"]
    assert config["HostConfig"]["Binds"] == [f"{repo}:{repo}:rw"]
    assert "epoch 2 loss 0.3" in out.stdout and "a warning on stderr" in out.stdout
    assert docker_engine.containers == {} and len(docker_engine.removed) == 1
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
    (created,) = [r for r in docker_engine.requests if r.path.endswith("/containers/create")]
    assert json.loads(created.body)["HostConfig"]["Binds"] == [f"/home/runner/work/models/models:{repo}:rw"]


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
    assert docker_engine.containers == {} and len(docker_engine.removed) == 1


def test_no_engine_is_a_one_line_error(tmp_path: Path):
    repo = example_repo(tmp_path)
    out = run_cli(repo, "--run", "python train.py", "--train-image", "python:3.11-slim",
                  env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert out.returncode == 2
    assert out.stderr.strip().startswith("cml-action: error: train-image needs a Docker engine (tcp://127.0.0.1:9)")
    assert "Traceback" not in out.stderr
