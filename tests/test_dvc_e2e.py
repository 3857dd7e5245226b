"""DVC projects for real: our numbers must equal `dvc metrics diff --json` / `dvc params diff --json`, run as
the CLI on the same repository; pull/repro/push go through a local directory remote."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from dvc_helpers import clone, dvc, dvc_repo
from repo_helpers import run_cli

from cml_action.sources import dvc as dvc_source
from cml_action.errors import UserError


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
    assert found.plots == [("eval/roc.json", {"x": "fpr", "y": "tpr", "title": "ROC"})]
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
    assert ("sub/history.csv", {"x": "step", "y": "loss,val_loss", "title": "Loss", "y_label": "loss"}) in found.plots
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
    dvc_source.push(repo)  # the branch's outputs too, as CI does after training
    produced = (repo / "eval" / "metrics.json").read_bytes()
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "eval" / "metrics.json").unlink()
    dvc_source.pull(repo)
    assert (repo / "eval" / "metrics.json").read_bytes() == produced


def test_unreachable_remote_is_one_line(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    shutil.rmtree(repo.parent / "remote")
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "eval" / "metrics.json").unlink()
    with pytest.raises(UserError) as caught:
        dvc_source.pull(repo)
    assert str(caught.value).startswith("dvc pull failed:") and "\n" not in str(caught.value)
    out = run_cli(repo, "run", "--dvc-pull", "true", "--notebook-diff", "false")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "dvc pull failed" in out.stderr


def test_a_broken_dvc_yaml_is_one_line(project, tmp_path: Path):
    repo = project(tmp_path)
    (repo / "dvc.yaml").write_text("stages:\n  train:\n    cmd: [unclosed\n")
    with pytest.raises(UserError):
        dvc_source.declared(repo)
    out = run_cli(repo, "report", "--notebook-diff", "false")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "DVC cannot read dvc.yaml" in out.stderr


def test_not_a_dvc_project_without_dot_dvc(tmp_path: Path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert not dvc_source.is_dvc_project(tmp_path)
    (tmp_path / ".dvc").mkdir()
    assert dvc_source.is_dvc_project(tmp_path)
