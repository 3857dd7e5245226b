"""A real DVC project for tests: git + `dvc init` + a pipeline with a local directory remote."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from repo_helpers import EXAMPLE, GIT_ENV, ROOT, git

DVC_EXAMPLE = ROOT / "workflows-examples" / "dvc-project"
DVC = str(Path(sys.executable).parent / "dvc")


def dvc(repo: Path, *args: str) -> str:
    import os

    out = subprocess.run([DVC, *args], cwd=repo, capture_output=True, text=True,
                         env={**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1",
                              "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def dvc_repo(tmp_path: Path, *, cached_metrics: bool = False) -> Path:
    """main: the pipeline reproduced and committed (metrics cached by DVC when `cached_metrics`), data pushed to a
    local remote; feature: params changed and reproduced, not committed."""
    assert EXAMPLE.exists()
    repo = tmp_path / "dvcrepo"
    shutil.copytree(DVC_EXAMPLE, repo)
    if cached_metrics:
        text = (repo / "dvc.yaml").read_text().replace("cache: false", "cache: true")
        (repo / "dvc.yaml").write_text(text)
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    dvc(repo, "repro", "-q")
    dvc(repo, "push", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline pipeline")
    git(repo, "checkout", "-q", "-b", "feature")
    params = (repo / "params.yaml").read_text().replace("max_depth: 4", "max_depth: 2").replace("n_estimators: 40", "n_estimators: 5")
    (repo / "params.yaml").write_text(params)
    dvc(repo, "repro", "-q")
    return repo
