"""Plots for any source that knows how to read a file at a revision: images side by side, data drawn overlaid.

A source hands over plot specs and a reader (`git show`, or DVC's cache); this gathers every file at head and
at each baseline, then draws each declaration once. Drawing is the slow part of a report, so the jobs are
collected first and drawn together, by a `plots.painter.Painter` started early.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cml_action.gitrefs import Baseline
from cml_action.plots.painter import Painter
from cml_action.plots.render import DrawJob, Layer
from cml_action.plots.spec import IMAGE_SUFFIXES, PlotFile, PlotSpec
from cml_action.report.render import Figure
from cml_action.sources.base import Contribution, Job, Unreadable
from cml_action.workspace_files import Refused, check, expand

# (commit sha, workspace-relative path) -> bytes there, None when the file did not exist; raises Unreadable
Reader = Callable[[str, str], "bytes | None"]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "plot"


def _read(read_at: Reader, baseline: Baseline, rel: str, out: Contribution) -> bytes | None:
    try:
        return read_at(baseline.sha, rel)
    except Unreadable as exc:
        out.warnings.append(f"`{rel}` could not be read at '{baseline.label}': {exc}; not drawn for it")
        return None


def _image(rel: str, head: Path, job: Job, read_at: Reader, out: Contribution) -> Figure:
    """An image plot: the head's copy, and each baseline's beside it when it differs."""
    dest = job.out_dir / "images" / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if head != dest.resolve():
        shutil.copyfile(head, dest)
    head_bytes = head.read_bytes()
    beside: list[tuple[str, str]] = []
    for baseline in job.baselines:
        raw = _read(read_at, baseline, rel, out)
        if raw is None:
            continue
        if raw == head_bytes:
            beside.append((baseline.label, dest.relative_to(job.out_dir).as_posix()))
            continue
        old = job.out_dir / "images" / "baselines" / _safe_name(baseline.label) / rel
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(raw)
        beside.append((baseline.label, old.relative_to(job.out_dir).as_posix()))
    notes = ["stale: not written by this run"] if job.stale(head) else []
    same = [label for label, path in beside if path == dest.relative_to(job.out_dir).as_posix()]
    if same and len(same) == len(beside):
        notes.append(f"unchanged since {', '.join(same)}")
        beside = []
    return Figure(dest.relative_to(job.out_dir).as_posix(), "; ".join(notes), beside=tuple(beside),
                  head_label=job.head_label)


def _files(spec: PlotSpec, job: Job, out: Contribution) -> list[PlotFile]:
    if spec.files:
        return list(spec.files)
    matched, unmatched = expand(job.workspace, [spec.pattern])
    for pattern in unmatched:
        out.problems.add(f"{pattern}: no file matches")
    return [PlotFile(rel) for rel in matched]


def _layers(spec: PlotSpec, files: list[PlotFile], job: Job, read_at: Reader, tmp: Path,
            out: Contribution) -> tuple[list[Layer], bool]:
    layers: list[Layer] = []
    stale = False
    for baseline in job.baselines:
        for file in files:
            raw = _read(read_at, baseline, file.path, out)
            if raw is not None:
                copy = tmp / _safe_name(baseline.sha + file.path) / Path(file.path).name
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(raw)
                layers.append(Layer(baseline.label, file, copy, False))
    for file in files:
        head = check(job.workspace, file.path)
        if isinstance(head, Refused):
            out.refused.append(head)
            continue
        stale = stale or job.stale(head)
        layers.append(Layer(job.head_label, file, head, True))
    return layers, stale


def _plan(spec: PlotSpec, job: Job, read_at: Reader, tmp: Path, out: Contribution, jobs: list[DrawJob],
          slots: list[Figure | int]) -> None:
    """One spec's images (placed now) and data plots (a draw job each, placed when drawn)."""
    data: list[PlotFile] = []
    for file in _files(spec, job, out):
        if Path(file.path).suffix.lower() not in IMAGE_SUFFIXES:
            data.append(file)
            continue
        head = check(job.workspace, file.path)
        if isinstance(head, Refused):
            out.refused.append(head)
        else:
            slots.append(_image(file.path, head, job, read_at, out))
    for group in ([data] if spec.files and data else [[file] for file in data]):
        layers, stale = _layers(spec, group, job, read_at, tmp, out)
        if any(layer.head for layer in layers):
            slots.append(len(jobs))
            jobs.append(DrawJob(spec, tuple(layers), spec.pattern if spec.files else group[0].path, stale))


def _place(slots: list[Figure | int], drawn: list[object], job: Job, out: Contribution) -> list[object]:
    plots = []
    for slot in slots:
        if isinstance(slot, Figure):
            out.figures.append(slot)
            continue
        result = drawn[slot]
        if isinstance(result, str):
            out.problems.add(result)
            continue
        plot, stale = result  # type: ignore[misc]
        plots.append(plot)
        caption = plot.caption + ("; stale: not written by this run" if stale else "")
        out.figures.append(Figure(plot.image.relative_to(job.out_dir).as_posix(), caption))
    return plots


def collect_plots(specs: list[PlotSpec], job: Job, read_at: Reader, out: Contribution) -> list[object]:
    """Figures in declaration order into `out`; returns what was drawn (RenderedPlot, with its data series)."""
    jobs: list[DrawJob] = []
    slots: list[Figure | int] = []  # a figure, or the index of the draw job that will fill the place
    with tempfile.TemporaryDirectory(prefix="cml-plots-") as tmp:
        for spec in specs:
            _plan(spec, job, read_at, Path(tmp), out, jobs, slots)
        drawn = (job.painter or Painter(0)).draw(jobs, job.out_dir / "plots")
    return _place(slots, drawn, job, out)
