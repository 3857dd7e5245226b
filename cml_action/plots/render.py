"""Drawing one plot declaration, every file and every revision in the same axes, into a deterministic PNG.

Kinds are picked from the data when not given: `actual`/`predicted` columns -> confusion matrix; a square
table whose first column repeats the other columns' names -> precomputed matrix; `fpr`/`tpr` -> ROC;
`precision`/`recall` -> PR curve; numeric x -> line; otherwise bars. DVC's templates map onto these kinds.
Revisions are overlaid as `dvc plots diff` overlays them: baselines drawn first, wide and translucent, the
head on top, so a head identical to its baseline still shows both. Confusion matrices get one panel per
revision (and the difference when there is one baseline).

Figures are drawn by plots.canvas (Pillow, in matplotlib's look) with fixed margins: importing matplotlib
would cost more than drawing every plot of a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cml_action.errors import UserError
from cml_action.plots.data import load_table
from cml_action.plots.spec import PlotFile, PlotSpec

HEAD = "#1f77b4"
BASE = "#ff7f0e"
MORE = ("#2ca02c", "#d62728", "#9467bd", "#8c564b")
DPI = 100
SIZE = (8, 4.5)
WHAT = {"line": "Line plot", "scatter": "Scatter plot", "bar": "Bar chart", "confusion": "Confusion matrix",
        "roc": "ROC curve", "pr": "Precision-recall curve"}


@dataclass(frozen=True)
class RenderedPlot:
    source: str
    image: Path
    caption: str
    # what was drawn, before any decimation: (revision, file, field) -> points, for checks against DVC
    series: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Layer:
    """One file at one revision; `path` is where its bytes are now (the workspace, or a temporary copy)."""

    revision: str
    file: PlotFile
    path: Path
    head: bool


@dataclass(frozen=True)
class DrawJob:
    """One declaration to draw, as planned by sources.plotting and sent to the drawing process."""

    spec: PlotSpec
    layers: tuple[Layer, ...]
    name: str
    stale: bool

    def cost(self) -> float:
        """A guess at the drawing time, to start the longest jobs first: a fixed part (the axes and their text),
        one per revision and file, more for the kinds with an artist per cell or category, and the data."""
        size = 0
        for layer in self.layers:
            try:
                size += layer.path.stat().st_size
            except OSError:
                pass
        heavy = 2.0 if self.spec.kind in ("confusion", "bar") else 1.0
        return heavy * (2 + len(self.layers)) + size / 200_000


@dataclass
class Frame:
    layer: Layer
    table: Any  # a plots.data.Table


def choose_kind(spec: PlotSpec, frame: Any) -> str:
    from cml_action.plots.kinds import guess_kind

    return spec.kind if spec.kind != "auto" else guess_kind(spec, frame)


def _columns(spec: PlotSpec, file: PlotFile) -> list[str] | None:
    x = file.x or spec.options.get("x")
    ys = list(file.ys) or spec.ys
    return list(dict.fromkeys([x, *ys])) if x and ys else None


def _load(spec: PlotSpec, layers: list[Layer]) -> list[Frame]:
    frames = []
    for layer in layers:
        try:
            frames.append(Frame(layer, load_table(layer.path, layer.file.path, _columns(spec, layer.file))))
        except UserError:
            if layer.head:
                raise
            # a baseline that cannot be read is not drawn; the caption says so
    return frames


def render_layers(spec: PlotSpec, layers: list[Layer], out_dir: Path, name: str) -> RenderedPlot:
    """`layers` holds at least one head layer; `name` makes the image file name."""
    from cml_action.plots import kinds

    frames = _load(spec, layers)
    head = next(f for f in frames if f.layer.head)
    kind = choose_kind(spec, head.table)
    figure, note, series = kinds.draw(kind, spec, frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    image = out_dir / (name.replace("/", "__") + ".png")
    figure.savefig(image)
    revisions = list(dict.fromkeys(f.layer.revision for f in sorted(frames, key=lambda f: not f.layer.head)))
    lost = [layer.revision for layer in layers if not layer.head and layer.revision not in revisions]
    files = list(dict.fromkeys(f"`{layer.file.path}`" for layer in layers))
    versus = f" ({' vs '.join(revisions)})" if len(revisions) > 1 else ""
    caption = f"{WHAT[kind]} of {', '.join(files)}{versus}"
    if lost:
        caption += f"; not drawn for {', '.join(lost)}: unreadable there"
    return RenderedPlot(name, image, caption + (f"; {note}" if note else ""), series)


def render_plot(spec: PlotSpec, rel: str, head_file: Path, base_file: Path | None, out_dir: Path) -> RenderedPlot:
    """One file, head against one baseline: the simple case of `render_layers`."""
    file = spec.files[0] if spec.files else PlotFile(rel)
    layers = [Layer("head", file, head_file, True)]
    if base_file is not None:
        layers.insert(0, Layer("baseline", file, base_file, False))
    return render_layers(spec, layers, out_dir, rel)


def draw_job(job: DrawJob, out_dir: Path) -> tuple[RenderedPlot, bool] | str:
    """(the plot, whether its head data is stale), or the one-line problem that kept it from being drawn."""
    try:
        return render_layers(job.spec, list(job.layers), out_dir, job.name), job.stale
    except UserError as exc:
        return str(exc)


def draw_job_away(job: DrawJob, out_dir: Path) -> tuple[RenderedPlot, bool] | str:
    """`draw_job` in the drawing process: the plot without its recorded points, which would only cost pickling."""
    import dataclasses

    result = draw_job(job, out_dir)
    if isinstance(result, tuple):
        plot, stale = result
        return dataclasses.replace(plot, series={}), stale
    return result


def warm_up() -> None:
    """The drawing process's first act: import the drawing stack (Pillow and numpy, and our kinds), and load
    the font once, so that every process forked from it starts with them."""
    from cml_action.plots import kinds, paint  # noqa: F401
    from cml_action.plots.canvas import FONT_SIZE, SCALE, font

    font(round(FONT_SIZE * DPI / 72 * SCALE))
