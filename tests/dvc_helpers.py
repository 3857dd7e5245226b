"""Real DVC projects for tests and benchmarks: git + `dvc init` + the example pipeline + a local directory remote.

Building one runs `dvc repro` twice (about 5 s), so tests build each kind once into a template and copy it.
The remote is configured in `.dvc/config.local` (not in git, as credentials-bearing remote settings usually
are), so a copy can point at its own copied remote: DVC reads the local config at every revision, while a
relative remote URL in the committed config is not resolved at past revisions by `dvc metrics diff`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from repo_helpers import GIT_ENV, ROOT, git

DVC_EXAMPLE = ROOT / "workflows-examples" / "dvc-project"
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")

# A second pipeline in a sub-directory: its own dvc.yaml/dvc.lock, a cached metric with lists DVC ignores,
# a params file tracked by one key only, and top-level `metrics:` and `plots:` (a named plot over a CSV).
SUB_DVC_YAML = """\
stages:
  score:
    cmd: python score.py
    deps:
      - score.py
      - ../eval/metrics.json
    params:
      - ../tuning.yaml:
          - lr
    metrics:
      - score.json
    outs:
      - history.csv
metrics:
  - summary.yaml
plots:
  - loss_curve:
      x: step
      y:
        history.csv: [loss, val_loss]
      title: Loss
      y_label: loss
"""
SUB_SCORE_PY = """\
import json, yaml
acc = json.load(open("../eval/metrics.json"))["accuracy"]
lr = yaml.safe_load(open("../tuning.yaml"))["lr"]
json.dump({"score": round(acc * lr, 6), "per_class": [0.1, 0.2], "nested": {"lr": lr, "tags": ["a"]},
           "note": "ok", "missing": None}, open("score.json", "w"))
with open("history.csv", "w") as fh:
    fh.write("step,loss,val_loss\\n")
    for step in range(5):
        fh.write(f"{step},{lr / (step + 1):.5f},{lr / (step + 0.5):.5f}\\n")
"""


def dvc(repo: Path, *args: str) -> str:
    """The dvc CLI as a user runs it."""
    out = subprocess.run([DVC, *args], cwd=repo, capture_output=True, text=True, check=False,
                         env={**os.environ, **GIT_ENV, "DVC_NO_ANALYTICS": "1",
                              "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def dvc_repo(root: Path, *, cached_metrics: bool = False, nested: bool = False) -> Path:
    """main: the pipeline reproduced, pushed to the local remote `root/remote` and committed (metrics cached
    by DVC, not in git, when `cached_metrics`); feature: params changed and reproduced, not committed."""
    repo = root / "dvcrepo"
    shutil.copytree(DVC_EXAMPLE, repo, ignore=shutil.ignore_patterns("eval", "__pycache__"))
    if cached_metrics:
        text = (repo / "dvc.yaml").read_text().replace("cache: false", "cache: true")
        (repo / "dvc.yaml").write_text(text)
    if nested:
        (repo / "sub").mkdir()
        (repo / "sub" / "dvc.yaml").write_text(SUB_DVC_YAML)
        (repo / "sub" / "score.py").write_text(SUB_SCORE_PY)
        (repo / "sub" / "summary.yaml").write_text("owner: team-a\nrows: 569\n")
        (repo / "tuning.yaml").write_text("lr: 0.5\nunused: 3\n")
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "--local", "-d", "local", str(root / "remote"))
    dvc(repo, "repro", "-q", *(["--all-pipelines"] if nested else []))
    dvc(repo, "push", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline pipeline")
    git(repo, "checkout", "-q", "-b", "feature")
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("max_depth: 4", "max_depth: 2").replace("n_estimators: 40", "n_estimators: 5"))
    if nested:
        (repo / "tuning.yaml").write_text("lr: 0.25\nunused: 4\n")
        (repo / "sub" / "summary.yaml").write_text("owner: team-b\nrows: 569\n")
    dvc(repo, "repro", "-q", *(["--all-pipelines"] if nested else []))
    return repo


def clone(template: Path, dest: Path) -> Path:
    """A private copy of a built project and its remote (`template` is the project inside its root)."""
    shutil.copytree(template.parent, dest, symlinks=True)
    repo = dest / template.name
    config = repo / ".dvc" / "config.local"
    config.write_text(config.read_text().replace(str(template.parent / "remote"), str(dest / "remote")))
    return repo
