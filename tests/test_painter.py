"""The drawing process (cml_action/plots/painter.py): the same files as drawing in the report process, answers in
the caller's order, problems as their line, and no process left behind, whether it drew, never drew or died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest

from cml_action.plots.painter import Painter, early
from cml_action.plots.render import DrawJob, Layer, RenderedPlot
from cml_action.plots.spec import PlotFile, PlotSpec

ROOT = Path(__file__).resolve().parent.parent


def _job(tmp: Path, name: str, text: str, base: str | None = None, kind: str = "") -> DrawJob:
    head = tmp / "data" / name
    head.parent.mkdir(parents=True, exist_ok=True)
    head.write_text(text)
    layers = [Layer("head", PlotFile(name), head, True)]
    if base is not None:
        old = tmp / "data" / f"base-{name}"
        old.write_text(base)
        layers.insert(0, Layer("main", PlotFile(name), old, False))
    return DrawJob(PlotSpec(name, {"type": kind} if kind else {}), tuple(layers), name, False)


@pytest.fixture
def jobs(tmp_path: Path) -> list[DrawJob]:
    loss = "epoch,loss\n" + "".join(f"{i},{1 / (i + 1)}\n" for i in range(300))
    old_loss = "epoch,loss\n" + "".join(f"{i},{1.2 / (i + 1)}\n" for i in range(300))
    pairs = "actual,predicted\n" + "a,a\n" * 7 + "a,b\n" * 3 + "b,b\n" * 8 + "b,a\n" * 2
    return [
        _job(tmp_path, "loss.csv", loss, old_loss),
        _job(tmp_path, "importance.csv", "feature,importance\nage,0.5\nincome,0.3\nzip,0.2\n", kind="bar"),
        _job(tmp_path, "cm.csv", pairs, pairs.replace("b,a", "b,b")),
        _job(tmp_path, "broken.csv", "name\nx\ny\n"),  # no numeric column: a problem, not a crash
        _job(tmp_path, "points.csv", "x,y\n" + "".join(f"{i % 7},{(i * 13) % 11}\n" for i in range(200)),
             kind="scatter"),
        _job(tmp_path, "acc.csv", "step,acc\n1,0.5\n2,0.7\n3,0.8\n"),
    ]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_drawing_process_draws_what_the_report_process_would(tmp_path: Path, jobs: list[DrawJob]):
    here = Painter(0).draw(jobs, tmp_path / "here")
    with Painter(3) as painter:  # the drawing process and two helpers
        away = painter.draw(jobs, tmp_path / "away")
    assert [type(r) for r in away] == [type(r) for r in here]
    assert isinstance(away[3], str) and "no numeric column" in away[3] and away[3] == here[3]
    for near, far in zip(here, away):
        if isinstance(near, str):
            continue
        (plot, stale), (drawn, drawn_stale) = near, far
        assert isinstance(drawn, RenderedPlot) and drawn.caption == plot.caption and drawn_stale == stale
        assert drawn.image.read_bytes() == plot.image.read_bytes()
        assert plot.series and not drawn.series  # the points stay where they were drawn


def test_many_plots_over_helpers_each_drawn_once_in_order(tmp_path: Path):
    jobs = [_job(tmp_path, f"p{i:02d}.csv", "step,v\n" + "".join(f"{k},{k * i}\n" for k in range(20)))
            for i in range(1, 24)]
    with Painter(4) as painter:
        drawn = painter.draw(jobs, tmp_path / "out")
        again = painter.draw(jobs[:3], tmp_path / "again")  # a second batch, new helpers
    assert [plot.source for plot, _ in drawn] == [job.name for job in jobs]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"p{i:02d}.csv.png" for i in range(1, 24))
    assert [plot.source for plot, _ in again] == ["p01.csv", "p02.csv", "p03.csv"]


def test_a_painter_that_never_drew_is_killed_and_reaped_at_once():
    painter = Painter(2)
    pid = painter._pid
    started = time.monotonic()
    painter.close()
    assert time.monotonic() - started < 5 and _gone(pid)
    painter.close()  # idempotent


def test_a_dead_drawing_process_means_drawing_here(tmp_path: Path, jobs: list[DrawJob]):
    painter = Painter(2)
    os.kill(painter._pid, signal.SIGKILL)
    time.sleep(0.2)
    drawn = painter.draw(jobs, tmp_path / "out")
    assert not painter.running
    assert isinstance(drawn[0], tuple) and drawn[0][0].series  # drawn in this process
    assert (tmp_path / "out" / "loss.csv.png").is_file()


def test_early_painter_only_for_a_report_that_may_draw(tmp_path: Path):
    def args(command: str, **options: object) -> Namespace:
        return Namespace(**{"command": command, "workdir": str(tmp_path), "plots": [], "metrics": [], "params": [],
                            **options})

    assert early(args("run", plots=["loss.csv"])) is None  # training first: the pipeline starts one after it
    assert early(args("report")) is None  # nothing to draw
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert early(args("report", metrics=["m.json"])) is None  # named files replace DVC's declarations
    for painter in (early(args("report")), early(args("report", plots=["loss.csv"]))):
        assert painter is not None and painter.running
        painter.close()


@pytest.mark.parametrize("plots", [["loss.csv"], ["missing.csv"]])
def test_no_process_outlives_the_report(tmp_path: Path, plots: list[str]):
    """Whether the drawing process drew (with helpers) or had nothing to draw (killed while importing),
    nothing started by the report is left running in its folder afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "loss.csv").write_text("epoch,loss\n" + "".join(f"{i},{1 / (i + 1)}\n" for i in range(50)))
    subprocess.run([sys.executable, "-m", "cml_action", "report", "--baseline", "none", "--target", "none",
                    "--plots", " ".join(plots)], cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   capture_output=True, timeout=120, check=False)
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == work:
                left.append(proc.name)
        except OSError:
            continue
    assert not left
    assert (work / "cml-report" / "report.md").is_file()
