"""The collect step's sources through the CLI on real git repositories: stale values after a failed training,
the user's markdown images in the report folder, several baselines, and the readability rules of a report."""

from __future__ import annotations

import json
from pathlib import Path

from repo_helpers import example_repo, git, run_cli

from cml_action.report.render import change, fmt


def test_values_a_failed_training_did_not_write_are_stale(tmp_path: Path):
    repo = example_repo(tmp_path)  # metrics.json is committed on main, and not rewritten by this run
    out = run_cli(repo, "--run", "echo starting; exit 3", "--metrics", "metrics.json", "--notebook-diff", "false")
    assert out.returncode == 1
    report = (repo / "cml-report" / "report.md").read_text()
    summary = report.splitlines()[2]
    accuracy = json.loads((repo / "metrics.json").read_text())["accuracy"]
    assert f"**accuracy** {fmt(float(accuracy))} (stale: not written by this run)" in summary
    assert "vs main" not in summary  # no change claimed for a value this run did not produce
    assert f"| accuracy | {fmt(float(accuracy))} | {fmt(float(accuracy))} (stale) | stale |" in report
    assert "not written by this run, so marked stale: `metrics.json`" in report


def test_values_the_training_wrote_are_not_stale(tmp_path: Path):
    repo = example_repo(tmp_path)
    out = run_cli(repo, "--run", "python train.py", "--metrics", "metrics.json", "--params", "params.yaml",
                  "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "### Parameters" in report
    assert "stale" not in report  # params are the training's inputs: never stale, though this run did not write them


def test_the_users_markdown_images_are_copied_into_the_report_folder(tmp_path: Path):
    repo = example_repo(tmp_path, change_params=False)
    (repo / "docs").mkdir()
    (repo / "plots").mkdir()
    (repo / "plots" / "curve.png").write_bytes((repo / "confusion_matrix.png").read_bytes())
    (repo / "docs" / "notes.md").write_text("## Notes\n\n![curve](../plots/curve.png)\n\n![gone](../nope.png)\n\n"
                                           "![outside](../../../etc/hostname)\n")
    out = run_cli(repo, "report", "--report", "docs/notes.md", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "![curve](images/report/plots/curve.png)" in report
    copy = repo / "cml-report" / "images" / "report" / "plots" / "curve.png"
    assert copy.read_bytes() == (repo / "plots" / "curve.png").read_bytes()
    assert "⚠️ image `../nope.png` was not published: file not found." in report
    assert "⚠️ image `../../../etc/hostname` was not published" in report and "](../" not in report
    meta = json.loads((repo / "cml-report" / "report.json").read_text())
    assert "images/report/plots/curve.png" in meta["images"]  # declared: the one the publisher may upload


def test_two_baselines_get_a_column_each(tmp_path: Path):
    repo = example_repo(tmp_path)
    git(repo, "tag", "v0", "main")
    git(repo, "checkout", "-q", "main")  # main moves on after the release
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("max_depth: 6", "max_depth: 4"))
    run_cli(repo, "--run", "python train.py")
    git(repo, "commit", "-qam", "deeper")
    git(repo, "checkout", "-q", "feature")
    out = run_cli(repo, "--run", "python train.py", "--metrics", "metrics.json", "--params", "params.yaml",
                  "--baseline", "main,v0", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "| Metric | main | v0 | head | Change vs main | Change vs v0 |" in report
    assert "| **model.max_depth** | 4 | 6 | **2** |" in report
    assert "vs `main` (`" in report and ", `v0` (`" in report


def test_a_missing_second_baseline_stops_before_anything_runs(tmp_path: Path):
    repo = example_repo(tmp_path)
    out = run_cli(repo, "--run", "touch trained", "--metrics", "metrics.json", "--baseline", "main no-such-tag",
                  "--notebook-diff", "false")
    assert out.returncode == 2
    assert "--baseline no-such-tag: no such branch, tag or commit" in out.stderr
    assert not (repo / "trained").exists()  # a typo costs nothing: the training never started


def test_a_local_run_on_main_compares_the_workspace_with_the_last_commit(tmp_path: Path):
    repo = example_repo(tmp_path, change_params=False)
    git(repo, "checkout", "-q", "main")
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("max_depth: 6", "max_depth: 3"))
    out = run_cli(repo, "--run", "python train.py", "--metrics", "metrics.json", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    sha = git(repo, "rev-parse", "HEAD")[:7]
    assert f"| Metric | {sha} | workspace | Change |" in report  # not "HEAD | head"
    assert f"vs `{sha}`" in report and f"vs `{sha}` (`{sha}`)" not in report  # the short sha once


def test_a_clean_checkout_on_main_compares_with_the_commit_before(tmp_path: Path):
    repo = example_repo(tmp_path, change_params=False)
    git(repo, "checkout", "-q", "main")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("max_depth: 6", "max_depth: 3"))
    run_cli(repo, "--run", "python train.py")
    git(repo, "commit", "-qam", "retrained")
    out = run_cli(repo, "report", "--metrics", "metrics.json", "--params", "params.yaml", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert f"| Metric | {before[:7]} | head | Change |" in report
    assert "| **model.max_depth** | 6 | **3** |" in report  # a first run on main shows its change, not all "="


def test_tiny_deltas_and_values_print_without_exponents():
    assert change(0.87192, 0.872) == "▼ -0.00008 (-0.01%)"
    assert fmt(0.00008) == "0.00008" and fmt(1.5e-7) == "0.00000015"
    assert change(0.92, 0.9) == "▲ +0.02 (+2.22%)"  # ordinary deltas unchanged
