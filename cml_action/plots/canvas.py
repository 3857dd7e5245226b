"""The report's plots drawn with Pillow, through the few Figure/Axes calls the plot kinds make.

Why not matplotlib: importing it takes about half a second and a small figure some 60-90 ms of Python, so a
report's plots cost more than everything else in it together (benchmarks/report_vs_dvc.py). The kinds need
lines, dots, bars, a heat map, text, ticks and a legend, in matplotlib's look (its DejaVu Sans where
matplotlib is installed, its tab10 colours, its default sizes in points), which Pillow draws in a few ms.
Everything is drawn at twice the size and halved with a box filter, so lines and text are antialiased while
a solid line's core keeps its exact colour.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCALE = 2
FONT_SIZE = 9.0  # points, as the report's figures have always used
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf")
GRID = (231, 231, 231)  # matplotlib's grid grey (#b0b0b0) at alpha 0.3 on white
DASHES = {"--": (3.7, 1.6), ":": (1.0, 1.65), "-.": (6.4, 1.6, 1.0, 1.6)}  # in line widths, as matplotlib scales them
# colour maps as (position, colour) stops, interpolated linearly (ColorBrewer's Blues and RdBu)
COLORMAPS = {
    "Blues": ((0.0, "#f7fbff"), (0.25, "#c6dbef"), (0.5, "#6baed6"), (0.75, "#2171b5"), (1.0, "#08306b")),
    "RdBu": ((0.0, "#67001f"), (0.25, "#d6604d"), (0.5, "#f7f7f7"), (0.75, "#4393c3"), (1.0, "#053061")),
}
LEGEND_PLACES = ("upper right", "upper left", "lower left", "lower right", "upper center", "lower center")
MINUS = "\u2212"


# --- colours, fonts, numbers ----------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def rgb(color: str) -> tuple[int, int, int]:
    from PIL import ImageColor

    if color[:1] == "C" and color[1:].isdigit():  # matplotlib's "CN": the N-th colour of the cycle
        color = TAB10[int(color[1:]) % len(TAB10)]
    return ImageColor.getrgb(color)[:3]


def faded(color: tuple[int, int, int], alpha: float) -> tuple[int, int, int]:
    """`color` at `alpha` over white: what a translucent mark looks like on the plot's background."""
    return tuple(round(c * alpha + 255 * (1 - alpha)) for c in color)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _font_file() -> str | None:
    """matplotlib's DejaVu Sans when it is installed (found without importing it), else Pillow's own font."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return str(path) if path.is_file() else None


@functools.lru_cache(maxsize=32)
def font(pixels: int) -> Any:
    from PIL import ImageFont

    path = _font_file()
    return ImageFont.truetype(path, pixels) if path else ImageFont.load_default(pixels)


def colours_of(name: str, shares: Any) -> Any:
    """The colour map's RGB (uint8) for each share in [0, 1] of a numpy array, all at once: a matrix may be big."""
    import numpy as np

    stops = COLORMAPS[name]
    where = [p for p, _ in stops]
    channels = [np.interp(shares, where, [rgb(c)[k] for _, c in stops]) for k in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values inside [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten, at most `most` + 1."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return [low] if math.isfinite(low) else []
    raw = span / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9)
    ticks = [(first + i) * step for i in range(most + 2)]
    return [0.0 if abs(t) < step * 1e-9 else t for t in ticks if t <= high + step * 1e-9]


def tick_labels(ticks: list[float]) -> list[str]:
    """One format for all ticks of an axis: as many decimals as the step needs, or three significant digits
    in scientific notation for very large or very small values."""
    if not ticks:
        return []
    step = min((abs(b - a) for a, b in zip(ticks, ticks[1:]) if b != a), default=abs(ticks[0]) or 1.0)
    biggest = max(abs(t) for t in ticks)
    if biggest >= 1e6 or step < 1e-4:
        texts = [f"{t:.3g}" for t in ticks]
    else:
        decimals = 0
        while decimals < 6 and abs(round(step, decimals) - step) > step * 1e-6:
            decimals += 1
        texts = [f"{t:.{decimals}f}" for t in ticks]
    return [_minus(t) for t in texts]


def _minus(text: str) -> str:
    """matplotlib's typographic minus; never a "-0"."""
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace("-", MINUS)


# --- what an axes holds ----------------------------------------------------------------------------
@dataclass
class Mark:
    """One thing drawn in data coordinates: a line, dots, bars or a heat map."""

    kind: str  # line | dots | bars | image
    xs: Any = None
    ys: Any = None
    color: tuple[int, int, int] = (0, 0, 0)
    width: float = 1.5  # points: line width, dot diameter, or (bars) the bar height in data units
    dashes: tuple[float, ...] = ()
    label: str | None = None
    zorder: float = 2
    values: Any = None  # image: the matrix
    cmap: str = "Blues"
    limits: tuple[float, float] = (0.0, 1.0)
    alpha: float = 1.0


@dataclass
class Note:
    x: float
    y: float
    text: str
    size: float
    color: tuple[int, int, int]
    ha: str = "center"
    va: str = "center"


@dataclass
class Ticks:
    positions: list[float] | None = None
    labels: list[str] | None = None
    rotation: float = 0
    ha: str = "center"


def _linestyle(style: Any) -> tuple[float, ...]:
    if style in (None, "-", "solid"):
        return ()
    if isinstance(style, tuple):
        return tuple(float(v) for v in style[1])
    return DASHES.get(style, ())


class Axes:
    """The subset of matplotlib's Axes the plot kinds call; drawing happens in `Figure.savefig`."""

    def __init__(self) -> None:
        self.marks: list[Mark] = []
        self.notes: list[Note] = []
        self.title = self.xlabel = self.ylabel = ""
        self.xlim: tuple[float, float] | None = None
        self.ylim: tuple[float, float] | None = None
        self.xticks, self.yticks = Ticks(), Ticks()
        self.y_inverted = False
        self.grid_on = True
        self.legend_at: str | None = None
        self.legend_size = 8.0
        self.visible = True

    def plot(self, xs: Any, ys: Any, color: str = "C0", linestyle: Any = "-", linewidth: float = 1.5,
             label: str | None = None, zorder: float = 2, **_: Any) -> None:
        self.marks.append(Mark("line", _floats(xs), _floats(ys), rgb(color), linewidth, _linestyle(linestyle),
                               label, zorder))

    def scatter(self, xs: Any, ys: Any, s: float = 20, color: str = "C0", alpha: float = 1.0,
                label: str | None = None, zorder: float = 1, **_: Any) -> None:
        self.marks.append(Mark("dots", _floats(xs), _floats(ys), rgb(color), math.sqrt(s), label=label,
                               zorder=zorder, alpha=float(alpha)))

    def barh(self, ys: Any, widths: Any, height: float = 0.8, color: str = "C0", label: str | None = None,
             **_: Any) -> None:
        self.marks.append(Mark("bars", _floats(widths), _floats(ys), rgb(color), height, label=label))

    def imshow(self, values: Any, cmap: str = "Blues", vmin: float | None = None, vmax: float | None = None,
               **_: Any) -> None:
        import numpy as np

        values = np.asarray(values, dtype=float)
        low = float(np.nanmin(values)) if vmin is None else vmin
        high = float(np.nanmax(values)) if vmax is None else vmax
        self.marks.append(Mark("image", values=values, cmap=cmap, limits=(low, high), zorder=0))
        self.y_inverted, self.grid_on = True, False

    def text(self, x: float, y: float, s: str, ha: str = "center", va: str = "center", fontsize: float = 8,
             color: str = "black", **_: Any) -> None:
        self.notes.append(Note(float(x), float(y), s, fontsize, rgb(color), ha, va))

    def set_xlim(self, low: float, high: float) -> None:
        self.xlim = (float(low), float(high))

    def set_ylim(self, low: float, high: float) -> None:
        self.ylim = (float(low), float(high))

    def set_xticks(self, positions: Any, labels: Any = None, rotation: float = 0, ha: str = "center") -> None:
        self.xticks = Ticks([float(p) for p in positions], None if labels is None else [str(v) for v in labels],
                            rotation, ha)

    def set_yticks(self, positions: Any, labels: Any = None) -> None:
        self.yticks = Ticks([float(p) for p in positions], None if labels is None else [str(v) for v in labels])

    def set_title(self, text: str) -> None:
        self.title = str(text)

    def set_xlabel(self, text: str) -> None:
        self.xlabel = str(text)

    def set_ylabel(self, text: str) -> None:
        self.ylabel = str(text)

    def invert_yaxis(self) -> None:
        self.y_inverted = not self.y_inverted

    def grid(self, on: bool = True, **_: Any) -> None:
        self.grid_on = bool(on)

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)

    def legend(self, loc: str = "best", fontsize: float = 8, **_: Any) -> None:
        self.legend_at, self.legend_size = loc, float(fontsize)

    def get_legend_handles_labels(self) -> tuple[list[Mark], list[str]]:
        handles = [m for m in self.marks if m.label and not m.label.startswith("_")]
        return handles, [str(m.label) for m in handles]


def _floats(values: Any) -> Any:
    import numpy as np

    out = np.asarray(values, dtype=float).ravel()
    out[~np.isfinite(out)] = np.nan
    return out


# --- the figure ------------------------------------------------------------------------------------
@dataclass
class Layout:
    left: float = 0.125
    right: float = 0.9
    bottom: float = 0.11
    top: float = 0.88
    wspace: float = 0.2
    hspace: float = 0.2


@dataclass
class Figure:
    """figsize in inches and dpi as matplotlib takes them; `savefig` writes a PNG."""

    figsize: tuple[float, float] = (6.4, 4.8)
    dpi: float = 100
    axes: list[Axes] = field(default_factory=list)
    shape: tuple[int, int] = (1, 1)
    layout: Layout = field(default_factory=Layout)
    suptitle_text: str = ""

    def add_subplot(self) -> Axes:
        self.axes, self.shape = [Axes()], (1, 1)
        return self.axes[0]

    def subplots(self, rows: int, columns: int, squeeze: bool = False) -> Any:
        import numpy as np

        self.axes, self.shape = [Axes() for _ in range(rows * columns)], (rows, columns)
        grid = np.empty((rows, columns), dtype=object)
        for i, ax in enumerate(self.axes):
            grid[i // columns, i % columns] = ax
        return grid

    def subplots_adjust(self, **fractions: float) -> None:
        for name, value in fractions.items():
            setattr(self.layout, name, float(value))

    def suptitle(self, text: str) -> None:
        self.suptitle_text = str(text)

    def savefig(self, path: Path | str, **_: Any) -> None:
        from cml_action.plots.paint import paint

        image = paint(self)
        image.save(path, format="PNG", compress_level=1)
