"""DVC projects for real: our numbers must equal `dvc metrics diff --json` / `dvc params diff --json`, run as
the CLI on the same repository; pull/repro/push go through a local directory remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import dvc_helpers
from dvc_helpers import clone, dvc, dvc_repo
from repo_helpers import run_cli

from cml_action.sources import dvc as dvc_source
from cml_action.errors import UserError
from cml_action.plots import PlotFile, PlotSpec


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A private copy of a built DVC project; each kind is built once per module (building runs dvc repro)."""
    built: dict[tuple[bool, bool], Path] = {}

    def make(dest: Path, *, cached_metrics: bool = False, nested: bool = False) -> Path:
        kind = (cached_metrics, nested)
        if kind not in built:
            built[kind] = dvc_repo(tmp_path_factory.mktemp("dvc-template"), cached_metrics=cached_metrics, nested=nested)
        return clone(built[kind], dest / "copy")

    return make


def by_key(rows) -> dict[tuple[str, str], tuple]:
    return {(r.file, r.key): (r.base, r.head) for r in rows}


def dvcs_diff(repo: Path, what: str, rev: str = "main") -> dict[tuple[str, str], tuple]:
    data = json.loads(dvc(repo, what, "diff", "--json", "--all", rev) or "{}")
    return {(f, k): (v.get("old"), v.get("new")) for f, keys in data.items() for k, v in keys.items()}


def assert_equal_to_dvc(repo: Path, found: dvc_source.Declared) -> None:
    ours_m = by_key(dvc_source.metric_rows(repo, "main", found))
    ours_p = by_key(dvc_source.param_rows(repo, "main", found))
    theirs_m, theirs_p = dvcs_diff(repo, "metrics"), dvcs_diff(repo, "params")
    assert theirs_m and theirs_p
    assert ours_m == theirs_m
    assert ours_p == theirs_p
    assert any(old != new for old, new in theirs_m.values()), "the branch must move a metric for this to prove much"


def in_git(repo: Path, rev: str, path: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{rev}:{path}"], cwd=repo, check=False).returncode == 0


@pytest.mark.parametrize("cached", [False, True], ids=["metrics-in-git", "metrics-in-dvc-cache"])
def test_diff_equals_dvcs_own(project, tmp_path: Path, cached: bool):
    repo = project(tmp_path, cached_metrics=cached)
    assert in_git(repo, "main", "eval/metrics.json") is not cached
    found = dvc_source.declared(repo)
    assert found.metrics == ["eval/metrics.json"] and found.params == ["params.yaml"]
    assert found.plots == [PlotSpec("eval/roc.json", {"x": "fpr", "y": "tpr", "title": "ROC"},
                                    (PlotFile("eval/roc.json", "fpr", ("tpr",)),))]
    assert_equal_to_dvc(repo, found)


def test_baseline_output_missing_from_the_cache_comes_from_the_remote(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    found = dvc_source.declared(repo)
    before = by_key(dvc_source.metric_rows(repo, "main", found))
    shutil.rmtree(repo / ".dvc" / "cache")  # main's metrics object only survives in the remote now
    dvc(repo, "commit", "-f", "-q")  # the workspace's outputs back into the cache, as after a local repro
    assert_equal_to_dvc(repo, found)
    assert by_key(dvc_source.metric_rows(repo, "main", found)) == before


def test_nested_pipeline_and_top_level_declarations(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True, nested=True)
    found = dvc_source.declared(repo)
    assert found.metrics == ["eval/metrics.json", "sub/score.json", "sub/summary.yaml"]
    assert found.params == ["params.yaml", "tuning.yaml"] and found.param_keys["tuning.yaml"] == ["lr"]
    assert found.outputs["sub/score.json"] == dvc_source.Locked("sub/dvc.lock", "score", "score.json")
    assert PlotSpec("loss_curve", {"title": "Loss", "y_label": "loss"},
                    (PlotFile("sub/history.csv", "step", ("loss", "val_loss")),)) in found.plots
    assert_equal_to_dvc(repo, found)
    params = by_key(dvc_source.param_rows(repo, "main", found))
    assert params[("tuning.yaml", "lr")] == (0.5, 0.25) and ("tuning.yaml", "unused") not in params
    metrics = by_key(dvc_source.metric_rows(repo, "main", found))
    assert ("sub/score.json", "per_class") not in metrics and ("sub/score.json", "missing") not in metrics


def test_report_and_repro_through_the_cli(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("seed: 7", "seed: 8"))
    out = run_cli(repo, "run", "--dvc-repro", "true", "--notebook-diff", "false", "--gates", "accuracy >= 0.5")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    theirs = dvcs_diff(repo, "metrics")
    old, new = theirs[("eval/metrics.json", "accuracy")]
    assert old != new
    assert f"| accuracy | {old:.4g} | {new:.4g} |" in report
    assert "| **train.seed** | 7 | **8** |" in report
    assert "ROC curve of `eval/roc.json`" in report
    assert "✅ **gates passed**" in report


def test_pull_restores_data_from_the_remote(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    assert dvc_source.run_dvc(repo, ["push"], os.environ).ok  # the branch's outputs too, as CI does after training
    produced = (repo / "eval" / "metrics.json").read_bytes()
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "eval" / "metrics.json").unlink()
    out = run_cli(repo, "run", "--dvc-pull", "true", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    assert (repo / "eval" / "metrics.json").read_bytes() == produced


def test_a_failed_pull_is_in_the_report_with_dvcs_message_and_exit_code(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    shutil.rmtree(repo.parent / "remote")
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "eval" / "metrics.json").unlink()
    theirs = subprocess.run([dvc_helpers.DVC, "pull"], cwd=repo, capture_output=True, text=True, check=False)
    assert theirs.returncode != 0
    out = run_cli(repo, "run", "--dvc-pull", "true", "--run", "touch trained.flag", "--notebook-diff", "false")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"`dvc pull` failed with exit code {theirs.returncode}" in out.stderr
    assert not (repo / "trained.flag").exists()  # no training on data that is not there
    report = (repo / "cml-report" / "report.md").read_text()
    assert f"`dvc pull` failed (exit code {theirs.returncode})" in report
    for line in (theirs.stdout + theirs.stderr).strip().splitlines():  # DVC's whole message, not its first line
        assert line.strip() in report, line


def test_a_failed_repro_keeps_dvcs_reason(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    (repo / "train.py").write_text("import sys\nprint('loading the data')\nsys.exit('no such table: features')\n")
    theirs = subprocess.run([dvc_helpers.DVC, "repro"], cwd=repo, capture_output=True, text=True, check=False)
    out = run_cli(repo, "run", "--dvc-repro", "true", "--notebook-diff", "false")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert f"`dvc repro` exited with code {theirs.returncode}" in report
    assert "no such table: features" in report and "failed to reproduce" in report.lower()
    assert "Last 0 log lines" not in report and "(no output)" not in report


def test_a_broken_dvc_yaml_is_one_line(project, tmp_path: Path):
    repo = project(tmp_path)
    (repo / "dvc.yaml").write_text("stages:\n  train:\n    cmd: [unclosed\n")
    with pytest.raises(UserError):
        dvc_source.declared(repo)
    out = run_cli(repo, "report", "--notebook-diff", "false")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "DVC cannot read dvc.yaml" in out.stderr
    assert (repo / "cml-report" / "report.md").is_file()


def test_not_a_dvc_project_without_dot_dvc(tmp_path: Path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert not dvc_source.is_dvc_project(tmp_path)
    (tmp_path / ".dvc").mkdir()
    assert dvc_source.is_dvc_project(tmp_path)
