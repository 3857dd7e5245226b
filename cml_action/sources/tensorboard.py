"""TensorBoard scalars as report plots, read with TensorBoard's own event reader (no tensorboard.dev link).

Each run directory under the log directory is one line; each scalar tag is one plot, runs overlaid.
"""

from __future__ import annotations

from pathlib import Path

from cml_action.errors import UserError
from cml_action.plots.decimate import min_max
from cml_action.plots.render import DPI, SIZE, RenderedPlot
from cml_action.report.render import Figure
from cml_action.sources.base import Contribution, Job
from cml_action.workspace_files import Refused, check

MAX_TAGS = 24


def _runs(logdir: Path) -> dict[str, Path]:
    runs = {}
    for events in sorted(logdir.rglob("events.out.tfevents.*")):
        run = events.parent
        runs[run.relative_to(logdir).as_posix() or "."] = run
    return runs


def scalar_plots(logdir: Path, out_dir: Path) -> list[RenderedPlot]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    except ImportError:
        raise UserError("TensorBoard logs need the tensorboard package: pip install 'cml-action[tensorboard]'") from None
    runs = _runs(logdir)
    if not runs:
        raise UserError(f"{logdir.name}: no TensorBoard event files (events.out.tfevents.*) found")
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for name, path in runs.items():
        acc = EventAccumulator(str(path), size_guidance={SCALARS: 0})  # 0 = keep every point
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            events = acc.Scalars(tag)
            series.setdefault(tag, {})[name] = ([e.step for e in events], [e.value for e in events])
    if not series:
        raise UserError(f"{logdir.name}: the event files hold no scalars")
    import numpy as np

    from cml_action.plots.canvas import Figure as Canvas

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for index, tag in enumerate(sorted(series)[:MAX_TAGS]):
        fig = Canvas(figsize=SIZE, dpi=DPI)
        ax = fig.add_subplot()
        for i, (run, (steps, values)) in enumerate(sorted(series[tag].items())):
            xs, ys = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
            keep = min_max(ys)
            ax.plot(xs[keep], ys[keep], color=f"C{i}", label=run)
        ax.set_title(tag)
        ax.set_xlabel("step")
        if len(series[tag]) > 1:
            ax.legend(loc="best")
        image = out_dir / f"{index:02d}-{tag.replace('/', '_')}.png"
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.11, top=0.92)
        fig.savefig(image)
        runs_text = ", ".join(sorted(series[tag]))
        plots.append(RenderedPlot(f"{logdir.name}:{tag}", image, f"TensorBoard scalar `{tag}` (runs: {runs_text})"))
    return plots


class TensorBoardSource:
    """`tensorboard: logs/`: one plot per scalar tag."""

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir

    def collect(self, job: Job) -> Contribution:
        out = Contribution()
        candidate = job.workspace / self.logdir
        result = candidate.resolve() if candidate.is_dir() else check(job.workspace, self.logdir)
        root = job.workspace.resolve()
        if isinstance(result, Refused) or not result.is_dir() or (result != root and root not in result.parents):
            out.problems.add(f"{self.logdir}: TensorBoard log directory not found in the workspace")
            return out
        try:
            plots = scalar_plots(result, job.out_dir / "tensorboard")
        except UserError as exc:
            out.problems.add(str(exc))  # after training: report the problem, never lose the report
            return out
        out.figures += [Figure(p.image.relative_to(job.out_dir).as_posix(), p.caption) for p in plots]
        return out
