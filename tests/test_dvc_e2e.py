"""DVC projects for real: our numbers must equal `dvc metrics diff --json` / `dvc params diff --json`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cml_action import dvc_source
from dvc_helpers import dvc, dvc_repo
from repo_helpers import run_cli


def by_key(rows):
    return {(r.file, r.key): (r.base, r.head) for r in rows}


@pytest.mark.parametrize("cached", [False, True], ids=["metrics-in-git", "metrics-in-dvc-cache"])
def test_diff_equals_dvcs_own(tmp_path: Path, cached: bool):
    repo = dvc_repo(tmp_path, cached_metrics=cached)
    found = dvc_source.declared(repo)
    assert found.metrics == ["eval/metrics.json"] and found.params == ["params.yaml"]
    assert found.plots == [("eval/roc.json", {"x": "fpr", "y": "tpr", "title": "ROC"})]
    ours_m = by_key(dvc_source.metric_rows(repo, "main", found))
    ours_p = by_key(dvc_source.param_rows(repo, "main", found))
    theirs_m = json.loads(dvc(repo, "metrics", "diff", "--json", "--all", "main"))
    theirs_p = json.loads(dvc(repo, "params", "diff", "--json", "--all", "main"))
    expected_m = {(f, k): (v["old"], v["new"]) for f, keys in theirs_m.items() for k, v in keys.items()}
    expected_p = {(f, k): (v["old"], v["new"]) for f, keys in theirs_p.items() for k, v in keys.items()}
    assert expected_m and expected_p
    assert {k: ours_m[k] for k in expected_m} == expected_m
    assert {k: ours_p[k] for k in expected_p} == expected_p
    assert set(ours_m) == set(expected_m) and set(ours_p) == set(expected_p)


def test_report_and_repro_through_the_cli(tmp_path: Path):
    repo = dvc_repo(tmp_path, cached_metrics=True)
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("seed: 7", "seed: 8"))
    out = run_cli(repo, "run", "--dvc-repro", "true", "--notebook-diff", "false", "--gates", "accuracy >= 0.5")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    theirs = json.loads(dvc(repo, "metrics", "diff", "--json", "--all", "main"))["eval/metrics.json"]
    acc = theirs["accuracy"]
    assert f"| accuracy | {acc['old']:.4g} | **{acc['new']:.4g}**" in report or f"| {acc['old']:.4g} |" in report
    assert "| **train.seed** | 7 | **8** |" in report
    assert "ROC curve of `eval/roc.json`" in report
    assert "✅ **gates passed**" in report


def test_pull_restores_data_from_the_remote(tmp_path: Path):
    repo = dvc_repo(tmp_path, cached_metrics=True)
    dvc(repo, "push", "-q")  # the feature branch's outputs too, as CI does after training
    git_main = repo
    shutil.rmtree(git_main / ".dvc" / "cache")
    (git_main / "eval" / "metrics.json").unlink()
    dvc_source.pull(git_main)
    assert (git_main / "eval" / "metrics.json").exists()


def test_a_broken_dvc_yaml_is_one_line(tmp_path: Path):
    repo = dvc_repo(tmp_path)
    (repo / "dvc.yaml").write_text("stages:\n  train:\n    cmd: [unclosed\n")
    out = run_cli(repo, "report", "--notebook-diff", "false")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("cml-action: error: DVC cannot")
