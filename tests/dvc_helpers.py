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


# --- a project shaped like DVC's get-started: stages, 8 plot declarations, metrics and params ------------
GET_STARTED_STAGES = [  # `dvc stage add` arguments, as the get-started guide builds its pipeline
    ["-n", "prepare", "-p", "prepare.seed,prepare.rows", "-d", "src/prepare.py", "-o", "data/prepared",
     "python src/prepare.py"],
    ["-n", "train", "-p", "train", "-d", "src/train.py", "-d", "data/prepared", "-o", "model.json",
     "-O", "eval/history.csv", "python src/train.py"],
    ["-n", "evaluate", "-d", "src/evaluate.py", "-d", "model.json", "-d", "data/prepared", "-M", "eval/metrics.json",
     "-o", "eval/plots", "-o", "eval/importance.png", "-O", "eval/importance.csv", "-O", "eval/predictions.csv",
     "python src/evaluate.py"],
]
# top-level plots (no CLI writes these): 8 declarations over 13 files, several files in one declaration
GET_STARTED_PLOTS = """\
plots:
  - ROC:
      template: simple
      x: fpr
      y:
        eval/plots/roc/train.json: tpr
        eval/plots/roc/test.json: tpr
  - Precision-Recall:
      template: simple
      x: recall
      y:
        eval/plots/prc/train.json: precision
        eval/plots/prc/test.json: precision
  - Confusion-Matrix:
      template: confusion
      x: actual
      y:
        eval/plots/cm/train.json: predicted
        eval/plots/cm/test.json: predicted
  - Confusion-Normalized:
      template: confusion_normalized
      x: actual
      y:
        eval/plots/cm/test.json: predicted
  - eval/history.csv:
      y: [loss, val_loss]
      title: Training loss
  - eval/importance.csv:
      template: bar_horizontal
      x: importance
      y: feature
  - eval/predictions.csv:
      template: scatter
      x: actual_value
      y: predicted_value
  - eval/importance.png
"""
GET_STARTED_PARAMS = "prepare:\n  seed: 20170428\n  rows: 4000\ntrain:\n  seed: 7\n  n_est: {n_est}\n  min_split: 0.{split}\n"
GET_STARTED_SRC = {
    "src/prepare.py": """\
import os, random, yaml
p = yaml.safe_load(open("params.yaml"))["prepare"]
rng = random.Random(p["seed"])
os.makedirs("data/prepared", exist_ok=True)
with open("data/prepared/data.csv", "w") as fh:
    fh.write("x,label\\n")
    for _ in range(p["rows"]):
        label = rng.random() < 0.4
        fh.write(f"{rng.gauss(1.0 if label else 0.0, 1.0):.5f},{int(label)}\\n")
""",
    "src/train.py": """\
import json, math, os, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
json.dump({"n_est": p["n_est"], "shift": p["min_split"]}, open("model.json", "w"))
os.makedirs("eval", exist_ok=True)
with open("eval/history.csv", "w") as fh:
    fh.write("epoch,loss,val_loss\\n")
    for e in range(200):
        fh.write(f"{e},{math.exp(-e / p['n_est']) + 0.05:.6f},{math.exp(-e / (p['n_est'] + 10)) + 0.08:.6f}\\n")
""",
    "src/evaluate.py": """\
import csv, json, os, random
model = json.load(open("model.json"))
rows = list(csv.DictReader(open("data/prepared/data.csv")))
split = len(rows) * 3 // 4
rng = random.Random(model["n_est"])
def scores(part):
    return [(int(r["label"]), float(r["x"]) - model["shift"] + rng.gauss(0, 50 / model["n_est"])) for r in part]
def roc(pairs):
    pairs = sorted(pairs, key=lambda p: -p[1]); pos = sum(l for l, _ in pairs); neg = len(pairs) - pos
    tp = fp = 0; out = [{"fpr": 0.0, "tpr": 0.0, "threshold": 99.0}]
    for label, s in pairs:
        tp += label; fp += 1 - label
        out.append({"fpr": round(fp / neg, 6), "tpr": round(tp / pos, 6), "threshold": round(s, 6)})
    return out
def prc(pairs):
    pairs = sorted(pairs, key=lambda p: -p[1]); pos = sum(l for l, _ in pairs); tp = 0; out = []
    for i, (label, s) in enumerate(pairs, 1):
        tp += label
        if i % 3 == 0:
            out.append({"precision": round(tp / i, 6), "recall": round(tp / pos, 6), "threshold": round(s, 6)})
    return out
metrics = {}
for name, part in (("train", rows[:split]), ("test", rows[split:])):
    pairs = scores(part)
    for kind, fn in (("roc", roc), ("prc", prc), ("cm", None)):
        os.makedirs(f"eval/plots/{kind}", exist_ok=True)
        data = fn(pairs) if fn else [{"actual": l, "predicted": int(s > 0.5)} for l, s in pairs]
        json.dump({kind: data} if fn else data, open(f"eval/plots/{kind}/{name}.json", "w"))
    points = roc(pairs)
    auc = sum((b["fpr"] - a["fpr"]) * (a["tpr"] + b["tpr"]) / 2 for a, b in zip(points, points[1:]))
    acc = sum((s > 0.5) == bool(l) for l, s in pairs) / len(pairs)
    metrics[name] = {"roc_auc": round(auc, 6), "accuracy": round(acc, 6)}
json.dump(metrics, open("eval/metrics.json", "w"), indent=2)
with open("eval/importance.csv", "w") as fh:
    fh.write("feature,importance\\n")
    for i in range(30):
        fh.write(f"feature_{i:02d},{rng.random() / (i + 1):.6f}\\n")
with open("eval/predictions.csv", "w") as fh:
    fh.write("actual_value,predicted_value\\n")
    for label, s in scores(rows[split:])[:1500]:
        fh.write(f"{label + rng.random() / 10:.5f},{s:.5f}\\n")
import zlib, struct
def png(width, height, shade):
    rows = b"".join(b"\\x00" + b"".join(bytes([(x * shade) % 256, (y * 2) % 256, 160]) for x in range(width))
                    for y in range(height))
    chunk = lambda tag, data: struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open("eval/importance.png", "wb").write(png(120, 60, model["n_est"] % 7 + 1))
""",
}


def get_started_repo(root: Path) -> Path:
    """Three revisions, as DVC's get-started has them: tag `v1` and `main` (each reproduced, pushed to the local
    remote and committed), then branch `feature` with changed params, reproduced and committed."""
    repo = root / "get-started"
    repo.mkdir(parents=True)
    for rel, text in GET_STARTED_SRC.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "--local", "-d", "local", str(root / "remote"))
    (repo / "params.yaml").write_text(GET_STARTED_PARAMS.format(n_est=40, split=5))
    for stage in GET_STARTED_STAGES:
        dvc(repo, "stage", "add", "-q", *stage)
    with open(repo / "dvc.yaml", "a", encoding="utf-8") as fh:
        fh.write(GET_STARTED_PLOTS)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "DVC project")
    for n_est, split, where in ((40, 5, "v1"), (50, 4, "main"), (80, 3, "feature")):
        if where == "feature":
            git(repo, "checkout", "-q", "-b", "feature")
        (repo / "params.yaml").write_text(GET_STARTED_PARAMS.format(n_est=n_est, split=split))
        dvc(repo, "repro", "-q")
        dvc(repo, "push", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"pipeline with n_est={n_est}")
        if where == "v1":
            git(repo, "tag", "v1")
    return repo


def only_first_plot(repo: Path) -> None:
    """The same project with one plot declaration (the first): what each further plot costs is the difference."""
    text = (repo / "dvc.yaml").read_text()
    head, plots = text.split("plots:\n  - ", 1)
    (repo / "dvc.yaml").write_text(head + "plots:\n  - " + plots.split("\n  - ", 1)[0] + "\n")
