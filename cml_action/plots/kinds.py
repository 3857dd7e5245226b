"""The plot kinds, each drawing every (file, revision) frame of one declaration into one figure.

Styles follow one rule: with a single series (one file, one column) each revision has its own colour (head
blue, the first baseline orange); with several series each series has its colour and the revision is the line
style. Baselines are drawn first, wide and dashed, the head on top, thin and solid, so identical curves show both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cml_action.errors import UserError
from cml_action.plots.data import Table
from cml_action.plots.decimate import min_max
from cml_action.plots.render import BASE, DPI, HEAD, MORE, SIZE, Frame
from cml_action.plots.spec import PlotSpec

if TYPE_CHECKING:
    from cml_action.plots.canvas import Figure

SCATTER_MAX = 20000
ACTUAL = ("actual", "y_true", "target", "label", "true")
PREDICTED = ("predicted", "y_pred", "prediction", "pred")
DASHES = ("--", ":", "-.", (0, (6, 2)))
Series = dict[tuple[str, str, str], list[Any]]


def _column(frame: Table, wanted: str | None, names: tuple[str, ...]) -> str | None:
    if wanted:
        return wanted if wanted in frame.columns else None
    lower = {str(c).lower(): c for c in frame.columns}
    return next((lower[name] for name in names if name in lower), None)


def _is_matrix(frame: Table) -> bool:
    first = frame.columns[0]
    rest = [str(c) for c in frame.columns[1:]]
    return (len(rest) >= 2 and len(frame) == len(rest) and not frame.numeric(first)
            and sorted(frame.labels(first)) == sorted(rest) and all(frame.numeric(c) for c in frame.columns[1:]))


def guess_kind(spec: PlotSpec, frame: Table) -> str:
    if _column(frame, spec.options.get("actual"), ACTUAL) and _column(frame, spec.options.get("predicted"), PREDICTED):
        return "confusion"
    if _is_matrix(frame):
        return "confusion"
    lower = {str(c).lower() for c in frame.columns}
    if {"fpr", "tpr"} <= lower:
        return "roc"
    if {"precision", "recall"} <= lower:
        return "pr"
    x = spec.options.get("x") or (frame.columns[0] if len(frame.columns) > 1 else None)
    if x is None or x not in frame.columns or frame.numeric(x):
        return "line"
    return "bar"


def draw(kind: str, spec: PlotSpec, frames: list[Frame]) -> tuple[Figure, str, Series]:
    if kind == "confusion":
        return _confusion(spec, frames)
    from cml_action.plots.canvas import Figure

    figure = Figure(figsize=SIZE, dpi=DPI)
    ax = figure.add_subplot()
    drawer = {"line": _line, "scatter": _scatter, "bar": _bar, "roc": _roc, "pr": _pr}[kind]
    series: Series = {}
    note, left = drawer(ax, spec, frames, series)
    ax.set_title(spec.options.get("title", spec.pattern))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)  # the corner covering the fewest points (a sample of each line)
    figure.subplots_adjust(left=left, right=0.98, bottom=0.11, top=0.92)
    return figure, note, series


# --- styles --------------------------------------------------------------------------------------
class Styles:
    """Colour, dash, width and label of each (frame, column) line, by the rule in the module docstring."""

    def __init__(self, frames: list[Frame], columns: dict[int, list[str]]) -> None:
        self.baselines = list(dict.fromkeys(f.layer.revision for f in frames if not f.layer.head))
        self.files = list(dict.fromkeys(f.layer.file.path for f in frames))
        self.names = _short_names(self.files)
        keys = [(f.layer.file.path, y) for i, f in enumerate(frames) for y in columns.get(i, [])]
        self.series = list(dict.fromkeys(keys))
        self.revisions = len(self.baselines) + (1 if any(f.layer.head for f in frames) else 0)

    def __call__(self, frame: Frame, y: str) -> dict[str, Any]:
        layer = frame.layer
        index = self.series.index((layer.file.path, y))
        rank = -1 if layer.head else self.baselines.index(layer.revision)
        if len(self.series) == 1:
            color = HEAD if layer.head else (BASE, *MORE)[rank % (1 + len(MORE))]
        else:
            color = f"C{index % 10}"
        parts = []
        if len(self.files) > 1:
            parts.append(self.names[layer.file.path])
        if len(self.series) > 1 and (len(self.files) == 1 or len({s[1] for s in self.series}) > 1):
            parts.append(y)
        if self.revisions > 1:
            parts.append(layer.revision)
        label = " · ".join(parts) or y
        if layer.head:
            return {"color": color, "linestyle": "-", "linewidth": 1.6, "label": label, "zorder": 3}
        return {"color": color, "linestyle": DASHES[rank % len(DASHES)], "linewidth": 3.0,
                "label": label, "zorder": 2}


def _short_names(files: list[str]) -> dict[str, str]:
    """Each file without the folders all of them share (`roc/train.json`, `roc/test.json`), as DVC labels them."""
    if len(files) < 2:
        return {f: f for f in files}
    parts = [f.split("/") for f in files]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return {f: "/".join(p[common:]) for f, p in zip(files, parts)}


def _ordered(frames: list[Frame]) -> list[tuple[int, Frame]]:
    """Baselines first (underneath), the head last (on top)."""
    return sorted(enumerate(frames), key=lambda item: item[1].layer.head)


# --- x/y kinds -----------------------------------------------------------------------------------
def _missing(rel: str, table: Table, name: str) -> UserError:
    return UserError(f"{rel}: no column {name!r} (columns: {', '.join(map(str, table.columns))})")


def _x(spec: PlotSpec, frame: Frame) -> str | None:
    """The x column; None is the row index (DVC's `step`). A DVC declaration without x means that index; a
    file of ours without x takes its first column."""
    table, file = frame.table, frame.layer.file
    x = file.x or spec.options.get("x")
    if x and x not in table.columns:
        if not (spec.files and x == "step"):
            raise _missing(file.path, table, x)
        return None
    if x is None and not spec.files and len(table.columns) > 1:
        return table.columns[0]
    return x


def _xy(spec: PlotSpec, frame: Frame) -> tuple[str | None, list[str]]:
    """The x column and the y columns of one frame: as named, else (DVC) the last column, else (ours) every
    numeric column but x."""
    table, rel = frame.table, frame.layer.file.path
    x = _x(spec, frame)
    ys = list(frame.layer.file.ys) or spec.ys
    if not ys:
        ys = [table.columns[-1]] if spec.files else [c for c in table.columns if c != x and table.numeric(c)]
    for y in ys:
        if y not in table.columns:
            raise _missing(rel, table, y)
        if not table.numeric(y):
            raise UserError(f"{rel}: column {y!r} is not numeric")
    if not ys:
        raise UserError(f"{rel}: no numeric column to plot")
    return x, ys


def _values(table: Table, x: str | None, y: str) -> tuple[Any, Any]:
    import numpy as np

    ys = table.floats(y)
    xs = table.floats(x) if x is not None else np.arange(len(ys), dtype=float)
    return xs, ys


def _pairs(xs: Any, ys: Any) -> Any:
    """The drawn points as one (n, 2) array: recorded for checks, without building a million tuples."""
    import numpy as np

    return np.column_stack([xs, ys])


def _axis_labels(ax: Any, spec: PlotSpec, x: str | None, ys: list[str]) -> None:
    ax.set_xlabel(spec.options.get("x_label", str(x) if x is not None else "step"))
    ax.set_ylabel(spec.options.get("y_label", ys[0] if len(set(ys)) == 1 else "value"))


def _line(ax: Any, spec: PlotSpec, frames: list[Frame], series: Series) -> tuple[str, float]:
    columns = {i: _xy(spec, f) for i, f in enumerate(frames)}
    styles = Styles(frames, {i: ys for i, (_, ys) in columns.items()})
    note = ""
    for i, frame in _ordered(frames):
        x, ys = columns[i]
        for y in ys:
            xs, vs = _values(frame.table, x, y)
            series[(frame.layer.revision, frame.layer.file.path, y)] = _pairs(xs, vs)
            keep = min_max(vs)
            ax.plot(xs[keep], vs[keep], **styles(frame, y))
            if len(keep) < len(vs):
                note = f"{len(vs):,} rows shown as {len(keep):,} points per series (min/max per pixel column)"
    x0, ys0 = next(columns[i] for i, f in enumerate(frames) if f.layer.head)
    _axis_labels(ax, spec, x0, [y for _, ys in columns.values() for y in ys])
    return note, 0.08


def _sample(xs: Any, vs: Any) -> tuple[Any, Any]:
    import numpy as np

    n = len(vs)
    if n <= SCATTER_MAX:
        return xs, vs
    rng = np.random.default_rng(0)  # fixed seed: the same data gives the same picture
    pick = np.unique(np.concatenate([rng.choice(n, SCATTER_MAX, replace=False), [np.nanargmin(vs), np.nanargmax(vs)]]))
    return xs[pick], vs[pick]


def _scatter(ax: Any, spec: PlotSpec, frames: list[Frame], series: Series) -> tuple[str, float]:
    columns = {i: _xy(spec, f) for i, f in enumerate(frames)}
    styles = Styles(frames, {i: ys[:1] for i, (_, ys) in columns.items()})
    note = ""
    for i, frame in _ordered(frames):
        x, ys = columns[i]
        xs, vs = _values(frame.table, x, ys[0])
        series[(frame.layer.revision, frame.layer.file.path, ys[0])] = _pairs(xs, vs)
        sx, sv = _sample(xs, vs)
        style = styles(frame, ys[0])
        ax.scatter(sx, sv, s=8, color=style["color"], alpha=0.8 if frame.layer.head else 0.5, label=style["label"],
                   zorder=style["zorder"])
        if len(sx) < len(xs):
            note = f"{len(xs):,} points shown as a fixed sample of {len(sx):,} including the extremes"
    x0, ys0 = next(columns[i] for i, f in enumerate(frames) if f.layer.head)
    _axis_labels(ax, spec, x0, ys0[:1])
    return note, 0.08


# --- bars ----------------------------------------------------------------------------------------
def _bar_columns(spec: PlotSpec, frame: Frame) -> tuple[str | None, str]:
    """(category column or None for the row number, value column). DVC's bar_horizontal names the value
    as x and the category as y; ours names the category x: whichever is numeric is the value."""
    table, file = frame.table, frame.layer.file
    x = file.x or spec.options.get("x")
    ys = list(file.ys) or spec.ys
    y = ys[0] if ys else None
    if x in table.columns and y in table.columns and table.numeric(x) and not table.numeric(y):
        return y, x
    x_found, found = _xy(spec, frame)
    return x_found, found[0]


def _bar_order(spec: PlotSpec, values: Any, rows: int) -> tuple[Any, str]:
    """Which bars, in which order: as given, sorted by value (`bar_horizontal_sorted`), or the 50 largest."""
    import numpy as np

    if rows > 50:
        return np.argsort(-np.abs(values), kind="stable")[:50], f"the 50 largest of {rows:,} bars"
    if spec.options.get("template") == "bar_horizontal_sorted":
        return np.argsort(-values, kind="stable"), ""
    return np.arange(rows), ""


def _bar(ax: Any, spec: PlotSpec, frames: list[Frame], series: Series) -> tuple[str, float]:
    import numpy as np

    columns = {i: _bar_columns(spec, f) for i, f in enumerate(frames)}
    styles = Styles(frames, {i: [v] for i, (_, v) in columns.items()})
    head_i = next(i for i, f in enumerate(frames) if f.layer.head)
    cat, val = columns[head_i]
    head = frames[head_i].table
    labels = head.labels(cat) if cat is not None else [str(i) for i in range(len(head))]
    order, note = _bar_order(spec, head.floats(val), len(head))
    labels = [labels[i] for i in order]
    drawn = _ordered(frames)
    width = 0.8 / len(drawn)
    positions = np.arange(len(labels))
    for slot, (i, frame) in enumerate(drawn):
        c, v = columns[i]
        keys = frame.table.labels(c) if c is not None else [str(k) for k in range(len(frame.table))]
        lookup = dict(zip(keys, frame.table.floats(v).tolist()))
        series[(frame.layer.revision, frame.layer.file.path, v)] = list(lookup.items())
        style = styles(frame, v)
        offset = (slot - (len(drawn) - 1) / 2) * width
        ax.barh(positions - offset, [lookup.get(label, np.nan) for label in labels], height=width,
                color=style["color"], label=style["label"] if len(drawn) > 1 else None)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel(spec.options.get("x_label" if cat != spec.options.get("x") else "y_label", val))
    longest = max((len(label) for label in labels), default=1)
    return note, min(0.45, 0.04 + 0.0072 * longest)


# --- curves --------------------------------------------------------------------------------------
def _curve(ax: Any, frames: list[Frame], series: Series, xname: str, yname: str, what: str) -> None:
    import numpy as np

    styles = Styles(frames, {i: [yname] for i in range(len(frames))})
    for _, frame in _ordered(frames):
        cols = {str(c).lower(): c for c in frame.table.columns}
        if not {xname, yname} <= set(cols):
            continue
        xs = frame.table.floats(cols[xname])
        ys = frame.table.floats(cols[yname])
        series[(frame.layer.revision, frame.layer.file.path, yname)] = _pairs(xs, ys)
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        area = float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2)) if len(xs) > 1 else float("nan")
        style = styles(frame, yname)
        style["label"] = f"{style['label']} ({what} {area:.3f})" if style["label"] != yname else f"{what} {area:.3f}"
        ax.plot(xs, ys, **style)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)


def _roc(ax: Any, spec: PlotSpec, frames: list[Frame], series: Series) -> tuple[str, float]:
    _curve(ax, frames, series, "fpr", "tpr", "AUC")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":", linewidth=1)
    ax.set_xlabel(spec.options.get("x_label", "false positive rate"))
    ax.set_ylabel(spec.options.get("y_label", "true positive rate"))
    return "", 0.08


def _pr(ax: Any, spec: PlotSpec, frames: list[Frame], series: Series) -> tuple[str, float]:
    _curve(ax, frames, series, "recall", "precision", "AP")
    ax.set_xlabel(spec.options.get("x_label", "recall"))
    ax.set_ylabel(spec.options.get("y_label", "precision"))
    return "", 0.08


# --- confusion matrices --------------------------------------------------------------------------
@dataclass
class Matrix:
    """Counts (or shares) of actual (rows) by predicted (columns), the same labels on both axes."""

    labels: list[str]
    values: Any  # 2-D numpy array

    def over(self, labels: list[str]) -> Matrix:
        import numpy as np

        index = {label: i for i, label in enumerate(self.labels)}
        out = np.zeros((len(labels), len(labels)))
        for i, a in enumerate(labels):
            for j, p in enumerate(labels):
                if a in index and p in index:
                    out[i, j] = self.values[index[a], index[p]]
        return Matrix(labels, out)


def _from_pairs(actual: list[str], predicted: list[str]) -> Matrix:
    import numpy as np

    labels = sorted(set(actual) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    values = np.zeros((len(labels), len(labels)))
    for a, p in zip(actual, predicted):
        values[index[a], index[p]] += 1
    return Matrix(labels, values)


def _from_table(table: Table) -> Matrix:
    """A precomputed matrix: actual labels in the first column, one column per predicted label."""
    import numpy as np

    rows = table.labels(table.columns[0])
    values = np.column_stack([table.floats(c) for c in table.columns[1:]])
    order = [rows.index(str(c)) for c in table.columns[1:]]  # row i is the actual label of column i
    return Matrix([str(c) for c in table.columns[1:]], values[order]).over(sorted(rows))


def _matrix(spec: PlotSpec, frame: Frame) -> Matrix:
    """From actual/predicted pairs or a precomputed table. A DVC declaration names actual as x and predicted
    as y, as DVC's confusion templates do."""
    import numpy as np

    table, file = frame.table, frame.layer.file
    ys = list(file.ys) or spec.ys
    actual = _column(table, file.x or spec.options.get("actual") or spec.options.get("x"), ACTUAL)
    predicted = _column(table, (ys[0] if ys else None) or spec.options.get("predicted"), PREDICTED)
    if actual and predicted:
        matrix = _from_pairs(table.labels(actual), table.labels(predicted))
    elif _is_matrix(table):
        matrix = _from_table(table)
    else:
        raise UserError(f"{file.path}: a confusion matrix needs actual/predicted columns or a square table")
    if spec.normalized:
        sums = matrix.values.sum(axis=1, keepdims=True)
        matrix = Matrix(matrix.labels, matrix.values / np.where(sums == 0, 1, sums))
    return matrix


def _panel(ax: Any, title: str, matrix: Matrix, diff: bool, normalized: bool) -> None:
    """One matrix; every cell is written on it, so no colour bar is needed to read it."""
    import numpy as np

    values = matrix.values
    if diff:
        bound = max(float(np.abs(values).max()), 1e-9)
        ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound)
    else:
        ax.imshow(values, cmap="Blues")
    size = len(matrix.labels)
    ax.set_xticks(range(size), matrix.labels, rotation=45 if size > 4 else 0, ha="right" if size > 4 else "center")
    ax.set_yticks(range(size), matrix.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.grid(False)
    ax.set_title(title)
    if size <= 20:
        fmt = ("{:+.2f}" if diff else "{:.2f}") if normalized else ("{:+.0f}" if diff else "{:.0f}")
        dark = np.abs(values).max() * 0.6 if diff else values.max() / 2  # where the map's colour is deep
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8,
                    color="white" if abs(value) > dark else "black")


def _matrices(spec: PlotSpec, frames: list[Frame]) -> list[tuple[Frame, Matrix]]:
    matrices = []
    for frame in frames:
        try:
            matrices.append((frame, _matrix(spec, frame)))
        except UserError:
            if frame.layer.head:
                raise  # a baseline that is not a matrix is simply not drawn
    return matrices


def _panels(spec: PlotSpec, matrices: list[tuple[Frame, Matrix]], series: Series) -> tuple[list, int, int]:
    """(title, matrix, is-difference) per panel, by file then revision (head first); a single file at two
    revisions adds their difference. Also the number of files and of revisions."""
    files = list(dict.fromkeys(f.layer.file.path for f, _ in matrices))
    revisions = list(dict.fromkeys(f.layer.revision for f, _ in sorted(matrices, key=lambda m: not m[0].layer.head)))
    title = spec.options.get("title", spec.pattern)
    names = _short_names(files)
    panels: list[tuple[str, Matrix, bool]] = []
    for frame, matrix in sorted(matrices, key=lambda m: (files.index(m[0].layer.file.path),
                                                         revisions.index(m[0].layer.revision))):
        series[(frame.layer.revision, frame.layer.file.path, "matrix")] = [
            (a, p, float(matrix.values[i, j])) for i, a in enumerate(matrix.labels) for j, p in enumerate(matrix.labels)]
        name = " · ".join(([names[frame.layer.file.path]] if len(files) > 1 else []) +
                          ([frame.layer.revision] if len(revisions) > 1 else []))
        panels.append((name or title, matrix, False))
    if len(matrices) == 2 and len(files) == 1:
        (base_f, b), (head_f, h) = sorted(matrices, key=lambda m: m[0].layer.head)
        labels = sorted(set(h.labels) | set(b.labels))
        h, b = h.over(labels), b.over(labels)
        panels = [(head_f.layer.revision, h, False), (base_f.layer.revision, b, False),
                  (f"difference ({head_f.layer.revision} - {base_f.layer.revision})", Matrix(labels, h.values - b.values),
                   True)]
    return panels, len(files), len(revisions)


def _confusion(spec: PlotSpec, frames: list[Frame]) -> tuple[Any, str, Series]:
    from cml_action.plots.canvas import Figure

    series: Series = {}
    panels, files, revisions = _panels(spec, _matrices(spec, frames), series)
    n = len(panels)
    columns = min(n, 3) if files == 1 else max(1, min(3, revisions))
    rows = (n + columns - 1) // columns
    figure = Figure(figsize=(max(4.5, 3.6 * columns), 3.4 * rows + 0.5), dpi=DPI)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, matrix, diff) in zip(axes, panels):
        _panel(ax, name, matrix, diff, spec.normalized)
    for ax in axes[n:]:
        ax.set_visible(False)
    if n > 1:
        figure.suptitle(spec.options.get("title", spec.pattern))
    figure.subplots_adjust(left=0.1, right=0.97, bottom=0.14 / rows, top=1 - 0.55 / (3.4 * rows + 0.5) - 0.04,
                           wspace=0.35, hspace=0.55)
    return figure, "", series
