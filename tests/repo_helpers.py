"""Real temporary git repositories holding the example project, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "workflows-examples" / "example-project"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def train(repo: Path) -> None:
    subprocess.run([sys.executable, "train.py"], cwd=repo, check=True, capture_output=True)


def example_repo(tmp_path: Path, *, change_params: bool = True) -> Path:
    """main: the example trained and committed (the baseline); feature: a changed parameter, not yet trained."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("cml-report", "__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    train(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline model")
    git(repo, "checkout", "-q", "-b", "feature")
    if change_params:
        params = (repo / "params.yaml").read_text().replace("max_depth: 6", "max_depth: 2").replace("n_estimators: 60", "n_estimators: 5")
        (repo / "params.yaml").write_text(params)
        git(repo, "commit", "-qam", "shallower trees")
    return repo


def run_cli(repo: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """The entrypoint as the action runs it: a subprocess with only the environment we give."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "INPUT_", "CML_"))}
    base.update(GIT_ENV)
    base["CML_RETRY_BACKOFF"] = "0.05"
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), *args], cwd=repo, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
