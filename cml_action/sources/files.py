"""The metric, parameter and plot files the user named (`metrics`, `params`, `plots`), at head and at each
baseline, the baseline read with `git show`.

Files are read with the same loader on both sides, so a value's key is identical and the diff is a join. A
file that exists at a baseline but cannot be parsed there is a warning ("failed to load some metrics for
'main'"), its values shown as unreadable, never as new.
"""

from __future__ import annotations

from collections.abc import Callable

from cml_action.errors import UserError
from cml_action.metrics import MetricRow, Value, load_values
from cml_action.sources.base import Contribution, Job, Side, join_rows, stale_warning, unread_warnings
from cml_action.workspace_files import Refused, check, expand

Parse = Callable[[bytes, str], dict[str, Value]]


def value_rows(job: Job, files: list[str], head: Side, stale: set[str], read_at: Callable[[str, str], bytes | None],
               parse: Parse, kind: str, out: Contribution) -> list[MetricRow]:
    """Baseline sides for `files`, joined with the head side the caller read. Parameters are the training's
    inputs, never its outputs: an unchanged params file is not stale, only metrics a run failed to write are."""
    if kind == "params":
        stale = set()
    bases: list[Side] = []
    for baseline in job.baselines:
        side = Side()
        for name in files:
            try:
                raw = read_at(baseline.sha, name)
            except Exception as exc:  # noqa: BLE001 - the reader's reason becomes the warning's
                side.unread[name] = str(exc) or type(exc).__name__
                continue
            if raw is None:
                continue
            try:
                side.values[name] = parse(raw, name)
            except UserError as exc:
                side.unread[name] = str(exc).removeprefix(f"{name}: ")
        bases.append(side)
    out.warnings += unread_warnings(kind, bases, job.baselines)
    return join_rows(files, head, bases, stale)


def _rows(patterns: list[str], job: Job, kind: str, out: Contribution) -> list[MetricRow]:
    files, unmatched = expand(job.workspace, patterns)
    for pattern in unmatched:
        out.problems.add(f"{pattern}: no file matches")
    head, stale, kept = Side(), set(), []
    for name in files:
        result = check(job.workspace, name)
        if isinstance(result, Refused):
            out.problems.add(f"{name}: {result.reason}")
            continue
        kept.append(name)
        try:
            head.values[name] = load_values(result, name)
        except UserError as exc:
            out.problems.add(str(exc))
        if job.stale(result):
            stale.add(name)
    return value_rows(job, kept, head, stale, job.show, load_values, kind, out)


class FileSource:
    def __init__(self, metrics: list[str], params: list[str], plots: list[str]) -> None:
        self.metrics, self.params, self.plots = metrics, params, plots
        self.draws = bool(plots)

    def collect(self, job: Job) -> Contribution:
        out = Contribution()
        out.metrics = _rows(self.metrics, job, "metrics", out)
        out.params = _rows(self.params, job, "params", out)
        if self.plots:
            from cml_action.plots import parse_plot_entries
            from cml_action.sources.plotting import collect_plots

            collect_plots(parse_plot_entries(self.plots), job, job.show, out)
        stale_warning(out)
        return out
