"""What every source of report content shares: the question it is asked (`Job`) and its answer (`Contribution`).

A source answers "given the workspace and the baseline revision(s), what do you add to the report?" and never
raises for the user's data: what goes wrong goes into `Contribution.problems` (exit 2 after the report is
posted) or `warnings` (shown, exit unchanged). So "never lose the report" holds by construction, not because
every caller remembered a try/except. Problems live here, with the sources, so that nothing below the
pipeline imports the pipeline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cml_action.gitrefs import Baseline
from cml_action.metrics import MetricRow, Value
from cml_action.report.model import Section
from cml_action.report.render import Figure
from cml_action.workspace_files import Refused


class Problems:
    """Input problems found after training: reported, then turned into exit code 2."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)


@dataclass(frozen=True)
class Job:
    """The question every source is asked. `baselines` is ordered: the first is the one the summary line and
    the gates compare with; `since` (epoch seconds) is when this run's training started, or None when values
    are vouched for as current (no training, or a `dvc repro` that succeeded)."""

    workspace: Path
    out_dir: Path
    baselines: tuple[Baseline, ...] = ()
    head_label: str = "head"
    since: float | None = None
    painter: Any = field(default=None, compare=False)  # plots.painter.Painter: draws plots in a process of its own
    blobs: Any = field(default=None, compare=False)  # gitrefs.Blobs: one git process for every file read

    def show(self, sha: str, rel: str) -> bytes | None:
        """A workspace-relative file at a commit (None when it was not there)."""
        if self.blobs is not None:
            return self.blobs.show(sha, rel)
        from cml_action.gitrefs import show

        return show(self.workspace, sha, rel)

    def stale(self, path: Path) -> bool:
        """A head file older than the training start was not written by this run."""
        if self.since is None:
            return False
        try:
            mtime_ns = os.stat(path).st_mtime_ns
        except OSError:
            return False
        # a file system that keeps whole seconds (or FAT's two) truncates a fresh write to before the start
        coarse = 2.0 if mtime_ns % 1_000_000_000 == 0 else 0.0
        return mtime_ns / 1e9 < self.since - coarse


@dataclass
class Contribution:
    """What one source adds. `lead_sections` go before everything else (the user's own markdown)."""

    metrics: list[MetricRow] = field(default_factory=list)
    params: list[MetricRow] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    lead_sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    images: list[str] = field(default_factory=list)  # report-folder images declared by the user's markdown

    def extend(self, other: Contribution) -> None:
        self.metrics += other.metrics
        self.params += other.params
        self.figures += other.figures
        self.refused += other.refused
        self.sections += other.sections
        self.lead_sections += other.lead_sections
        self.warnings += other.warnings
        self.images += other.images
        self.problems.messages += other.problems.messages


class Source(Protocol):
    """One kind of report content (files the user named, DVC, TensorBoard, notebooks, the user's markdown)."""

    def collect(self, job: Job) -> Contribution: ...


class Unreadable(Exception):
    """A file exists at a baseline but cannot be read there; the message says why (shown as a warning)."""


@dataclass
class Side:
    """Values of several files at one revision, and which files were there but could not be read."""

    values: dict[str, dict[str, Value]] = field(default_factory=dict)
    unread: dict[str, str] = field(default_factory=dict)  # file -> why it could not be read


def join_rows(files: list[str], head: Side, bases: list[Side], stale: set[str]) -> list[MetricRow]:
    """Join head and baseline values per file: the head's key order, then keys only a baseline had."""
    rows: list[MetricRow] = []
    for name in files:
        h = head.values.get(name, {})
        sides = [b.values.get(name, {}) for b in bases]
        keys = list(h)
        for side in sides:
            keys += [k for k in side if k not in keys]
        for key in keys:
            values = [side.get(key) for side in sides]
            rows.append(MetricRow(file=name, key=key, head=h.get(key), base=values[0] if values else None,
                                  more=tuple(values[1:]), stale=name in stale,
                                  unread=tuple(name in b.unread for b in bases) if any(name in b.unread for b in bases)
                                  else ()))
    return rows


def unread_warnings(kind: str, bases: list[Side], baselines: tuple[Baseline, ...]) -> list[str]:
    """DVC's wording ("failed to load some metrics for 'main'"), with the files and why."""
    out = []
    for side, baseline in zip(bases, baselines):
        if side.unread:
            what = "; ".join(f"`{name}`: {side.unread[name]}" for name in sorted(side.unread))
            out.append(f"failed to load some {kind} for '{baseline.label}' ({what}); they are shown as unreadable, "
                       "not as new")
    return out


def stale_warning(out: Contribution) -> None:
    stale = sorted({r.file for r in out.metrics + out.params if r.stale})
    if stale:
        out.warnings.append("not written by this run, so marked stale: " + ", ".join(f"`{f}`" for f in stale))
