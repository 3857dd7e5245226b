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
    assert f"### dvc pull failed (exit code {theirs.returncode})" in report
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


# --- declarations read without DVC equal DVC's own reading ------------------------------------------------
@pytest.fixture(scope="module")
def get_started(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """DVC's get-started shape: 3 stages, 8 plot declarations, tag v1, main, and branch feature checked out."""
    template = dvc_helpers.get_started_repo(tmp_path_factory.mktemp("get-started") / "root")

    def make(dest: Path) -> Path:
        return clone(template, dest / "copy")

    return make


@pytest.mark.parametrize("shape", ["plain", "cached", "nested", "get-started"])
def test_plain_declarations_equal_dvcs_index(project, get_started, tmp_path: Path, shape: str):
    repo = get_started(tmp_path) if shape == "get-started" else \
        project(tmp_path, cached_metrics=shape != "plain", nested=shape == "nested")
    from cml_action.sources.dvcyaml import read_plain

    plain = read_plain(repo)
    assert plain is not None
    assert plain == dvc_source.declared(repo, plain=False)


def test_templated_dvc_yaml_is_left_to_dvc(project, tmp_path: Path):
    repo = project(tmp_path)
    text = (repo / "dvc.yaml").read_text().replace("title: ROC", "title: ${plot_title}")
    (repo / "dvc.yaml").write_text("vars:\n  - plot_title: ROC curve\n" + text)
    from cml_action.sources.dvcyaml import read_plain

    assert read_plain(repo) is None
    found = dvc_source.declared(repo)
    assert found.plots[0].options["title"] == "ROC curve"  # DVC's own templating did it


# --- every number and every plot equals DVC's ------------------------------------------------------------
def _dvc_plots(repo: Path, *revs: str) -> dict:
    return json.loads(dvc(repo, "plots", "diff", *revs, "--json", "--split", "-o", "dvc_plots"))


def _short(ours: list[str], theirs: str | None) -> str:
    """DVC names a plot's files by the part that tells them apart (`train.json`); find ours."""
    if theirs is None:
        assert len(ours) == 1
        return ours[0]
    match = [f for f in ours if f == theirs or f.endswith("/" + theirs)]
    assert len(match) == 1, (ours, theirs)
    return match[0]


def _points(plot, rev_names: dict[str, str]) -> dict[tuple[str, str, str], set]:
    """Ours as DVC keys them: (revision, file, field) -> the set of (x, y) points drawn."""
    return {(rev_names.get(rev, rev), file, field): {tuple(p) for p in points}
            for (rev, file, field), points in plot.series.items()}


def _dvcs_points(entry: dict, files: list[str], x: str, y_field: str | None, kind: str) -> dict:
    rows = entry["anchor_definitions"]["<DVC_METRIC_DATA>"]
    out: dict[tuple[str, str, str], set] = {}
    for row in rows:
        file = _short(files, row.get("filename"))
        if kind == "confusion":
            key = (row["rev"], file, "matrix")
            out.setdefault(key, []).append((str(row[x]), str(row[y_field])))
            continue
        field = row.get("field") or y_field
        value = float(row["dvc_inferred_y_value"] if "dvc_inferred_y_value" in row else row[field])
        if kind == "bar":
            out.setdefault((row["rev"], file, x), set()).add((str(row[x]), value))
        else:
            out.setdefault((row["rev"], file, field), set()).add((float(row[x]), value))
    return out


def _matrix_counts(pairs: list[tuple[str, str]], normalized: bool) -> set:
    from collections import Counter

    counts = Counter(pairs)
    labels = sorted({a for a, _ in pairs} | {p for _, p in pairs})
    totals = {a: sum(counts[(a, p)] for p in labels) for a in labels}
    return {(a, p, round(counts[(a, p)] / (totals[a] or 1) if normalized else float(counts[(a, p)]), 9))
            for a in labels for p in labels}


def _compare_plot(spec, plot, dvc_entry: dict, rev_names: dict[str, str]) -> None:
    from cml_action.plots.render import choose_kind  # noqa: F401 - the kind is in our caption

    files = [f.path for f in spec.files]
    x = spec.files[0].x or "step"
    y = spec.files[0].ys[0] if spec.files[0].ys else None
    template = spec.options.get("template", "")
    kind = "confusion" if template.startswith("confusion") else "bar" if template.startswith("bar") else "xy"
    ours = _points(plot, rev_names)
    if kind == "confusion":
        pairs = _dvcs_points(dvc_entry, files, x, y, kind)
        theirs = {k: _matrix_counts(v, spec.normalized) for k, v in pairs.items()}
        ours = {k: {(a, p, round(v, 9)) for a, p, v in points} for k, points in ours.items()}
    elif kind == "bar":  # DVC's bar_horizontal: x the value, y the label; ours keyed by the value column
        theirs = {(r, f, x): {(label, v) for label, v in pts}
                  for (r, f, _), pts in _dvcs_points(dvc_entry, files, y, x, kind).items()}
        ours = {(r, f, x): set(points) for (r, f, _), points in ours.items()}
    else:
        theirs = _dvcs_points(dvc_entry, files, x, y, kind)
    assert ours == theirs, spec.pattern


@pytest.mark.parametrize("baselines", [("main",), ("main", "v1")], ids=["one-baseline", "two-baselines"])
def test_every_plot_of_get_started_equals_dvcs(get_started, tmp_path: Path, baselines: tuple[str, ...]):
    """Each declaration drawn once, every file and revision in it, the same points as `dvc plots diff`."""
    from cml_action.gitrefs import Baseline
    from cml_action.sources.base import Contribution, Job
    from cml_action.sources.plotting import collect_plots

    repo = get_started(tmp_path)
    shas = [subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True,
                           check=True).stdout.strip() for ref in baselines]
    job = Job(workspace=repo, out_dir=tmp_path / "out", baselines=tuple(Baseline(r, s, r) for r, s in zip(baselines, shas)))
    found = dvc_source.declared(repo)
    out = Contribution()
    drawn = collect_plots(found.plots, job, dvc_source.Revisions(repo, found, job.show).at, out)
    assert not out.problems.messages and not out.warnings and not out.refused
    theirs = _dvc_plots(repo, *(baselines if len(baselines) == 1 else ("workspace", *baselines)))
    assert not theirs.get("errors")
    data_specs = [s for s in found.plots if not s.pattern.endswith(".png")]
    assert [p.source for p in drawn] == [s.pattern for s in data_specs] and len(found.plots) == 8
    for spec, plot in zip(data_specs, drawn):
        (entry,) = theirs["data"][spec.pattern]
        assert sorted(entry["revisions"]) == sorted(["workspace", *baselines])
        _compare_plot(spec, plot, entry, {"head": "workspace"})
    # the image plot: head and each baseline beside it, byte for byte DVC's own
    (image,) = [f for f in out.figures if f.beside]
    assert [label for label, _ in image.beside] == list(baselines)
    dvc_images = {e["revisions"][0]: Path(e["url"]) for e in theirs["data"]["eval/importance.png"]}
    assert (job.out_dir / image.path).read_bytes() == dvc_images["workspace"].read_bytes()
    for label, path in image.beside:
        assert (job.out_dir / path).read_bytes() == dvc_images[label].read_bytes()


def test_get_started_report_through_the_cli(get_started, tmp_path: Path):
    repo = get_started(tmp_path)
    out = run_cli(repo, "report", "--baseline", "main v1", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "| Metric | main | v1 | head | Change vs main | Change vs v1 |" in report
    main, v1 = dvcs_diff(repo, "metrics", "main"), dvcs_diff(repo, "metrics", "v1")
    for (file, key), (old, new) in main.items():
        assert f"| {key} | {old:.6g} | {v1[(file, key)][0]:.6g} | {new:.6g} |" in report
    params_main, params_v1 = dvcs_diff(repo, "params", "main"), dvcs_diff(repo, "params", "v1")
    assert params_main[("params.yaml", "train.n_est")] == (50, 80) and params_v1[("params.yaml", "train.n_est")][0] == 40
    assert "| **train.n_est** | 50 | 40 | **80** |" in report
    assert report.count("![") == 10 and "(head vs main vs v1)" in report  # 7 drawn, the image at 3 revisions
    assert "⚠️" not in report


# --- DVC's failure modes, as DVC users meet them -----------------------------------------------------------
def _to_dvc1_lock(repo: Path) -> None:
    """Rewrite dvc.lock as DVC 1 wrote it: stages at the top, no schema, md5 without `hash:`."""
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    old = {}
    for name, stage in lock["stages"].items():
        old[name] = {"cmd": stage["cmd"]}
        for key in ("deps", "outs"):
            old[name][key] = [{"path": e["path"], "md5": e["md5"]} for e in stage.get(key, [])]
        if "params" in stage:
            old[name]["params"] = stage["params"]
    (repo / "dvc.lock").write_text(yaml.safe_dump(old, sort_keys=False))


def test_a_dvc1_lock_is_named_with_dvcs_error_and_read(project, tmp_path: Path):
    repo = project(tmp_path)
    _to_dvc1_lock(repo)
    theirs = subprocess.run([dvc_helpers.DVC, "metrics", "diff", "main", "--json"], cwd=repo, capture_output=True,
                            text=True, check=False)
    baseline = {(f, k): v["old"] for f, keys in json.loads(theirs.stdout).items() for k, v in keys.items()}
    assert "validation failed" in theirs.stderr and all(v is not None for v in baseline.values())
    out = run_cli(repo, "report", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "`dvc.lock` is in DVC 1's format" in report and "'./dvc.lock' validation failed" in report
    assert "extra keys not allowed" in report  # DVC's details, not only its headline
    head = json.loads((repo / "eval" / "metrics.json").read_text())
    for (_, key), old in baseline.items():
        assert f"| {key} | {old:.6g} | {head[key]:.6g} |" in report  # the baseline column DVC shows too


def test_an_unreadable_baseline_is_a_warning_not_new(project, tmp_path: Path):
    repo = project(tmp_path, cached_metrics=True)
    shutil.rmtree(repo.parent / "remote")
    shutil.rmtree(repo / ".dvc" / "cache")  # main's metrics object is gone everywhere
    theirs = subprocess.run([dvc_helpers.DVC, "metrics", "diff", "main"], cwd=repo, capture_output=True, text=True,
                            check=False)
    assert "failed to load some metrics for following revisions: 'main'" in theirs.stderr
    out = run_cli(repo, "report", "--notebook-diff", "false")
    assert out.returncode == 0, out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "failed to load some metrics for 'main'" in report and "neither locally nor on remote" in report
    assert "| accuracy | unreadable |" in report and "| new |" not in report
