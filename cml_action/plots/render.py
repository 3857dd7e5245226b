"""Drawing one data file, head against baseline, into a deterministic PNG.

Kinds are picked from the data when not given: `actual`/`predicted` columns -> confusion matrix; a square
table whose first column repeats the other columns' names -> precomputed matrix; `fpr`/`tpr` -> ROC;
`precision`/`recall` -> PR curve; numeric x -> line; otherwise bars. The baseline is drawn in the same
axes (dashed, orange) so the change is visible at a glance; confusion matrices get head, baseline and
their difference side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cml_action.errors import UserError
from cml_action.plots.data import load_table
from cml_action.plots.decimate import min_max
from cml_action.plots.spec import PlotSpec

HEAD = "#1f77b4"
BASE = "#ff7f0e"
DPI = 100
SIZE = (8, 4.5)
SCATTER_MAX = 20000
ACTUAL = ("actual", "y_true", "target", "label", "true")
PREDICTED = ("predicted", "y_pred", "prediction", "pred")


@dataclass(frozen=True)
class RenderedPlot:
    source: str
    image: Path
    caption: str


def _column(frame: Any, wanted: str | None, names: tuple[str, ...]) -> str | None:
    lower = {str(c).lower(): c for c in frame.columns}
    if wanted:
        return wanted if wanted in frame.columns else None
    for name in names:
        if name in lower:
            return lower[name]
    return None


def _numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_matrix(frame: Any) -> bool:
    first = frame.columns[0]
    rest = [str(c) for c in frame.columns[1:]]
    return (len(rest) >= 2 and len(frame) == len(rest) and not _numeric(frame[first])
            and sorted(map(str, frame[first])) == sorted(rest) and all(_numeric(frame[c]) for c in frame.columns[1:]))


def choose_kind(spec: PlotSpec, frame: Any) -> str:
    kind = spec.kind
    if kind != "auto":
        return kind
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
    if x is None or _numeric(frame[x]):
        return "line"
    return "bar"


def render_plot(spec: PlotSpec, rel: str, head_file: Path, base_file: Path | None, out_dir: Path) -> RenderedPlot:
    columns = None
    if spec.options.get("x") and spec.ys:
        columns = list(dict.fromkeys([spec.options["x"], *spec.ys]))
    head = load_table(head_file, rel, columns)
    base = None
    if base_file is not None:
        try:
            base = load_table(base_file, rel, columns)
        except UserError:
            base = None  # a baseline that cannot be read is simply not drawn
    kind = choose_kind(spec, head)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"figure.dpi": DPI, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9}):
        if kind == "confusion":
            fig, note = _confusion(spec, rel, head, base)
        else:
            fig, ax = plt.subplots(figsize=SIZE)
            drawer = {"line": _line, "scatter": _scatter, "bar": _bar, "roc": _roc, "pr": _pr}[kind]
            note = drawer(ax, spec, rel, head, base)
            ax.set_title(spec.options.get("title", rel))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best")
        out_dir.mkdir(parents=True, exist_ok=True)
        image = out_dir / (rel.replace("/", "__") + ".png")
        fig.tight_layout()
        fig.savefig(image, format="png", metadata={"Software": None})
        plt.close(fig)
    what = {"line": "Line plot", "scatter": "Scatter plot", "bar": "Bar chart", "confusion": "Confusion matrix",
            "roc": "ROC curve", "pr": "Precision-recall curve"}[kind]
    versus = " (head vs baseline)" if base is not None else ""
    return RenderedPlot(rel, image, f"{what} of `{rel}`{versus}" + (f"; {note}" if note else ""))


# --- kinds ---------------------------------------------------------------------------------------
def _xy(spec: PlotSpec, frame: Any, rel: str) -> tuple[str | None, list[str]]:
    x = spec.options.get("x")
    if x and x not in frame.columns:
        raise UserError(f"{rel}: no column {x!r} (columns: {', '.join(map(str, frame.columns))})")
    if x is None and len(frame.columns) > 1:
        x = frame.columns[0]
    ys = spec.ys or [c for c in frame.columns if c != x and _numeric(frame[c])]
    for y in ys:
        if y not in frame.columns:
            raise UserError(f"{rel}: no column {y!r} (columns: {', '.join(map(str, frame.columns))})")
        if not _numeric(frame[y]):
            raise UserError(f"{rel}: column {y!r} is not numeric")
    if not ys:
        raise UserError(f"{rel}: no numeric column to plot")
    return x, ys


def _series(frame: Any, x: str | None, y: str) -> tuple[Any, Any, int]:
    import numpy as np

    ys = frame[y].to_numpy(dtype=float)
    xs = frame[x].to_numpy(dtype=float) if x is not None else np.arange(len(ys), dtype=float)
    keep = min_max(ys)
    return xs[keep], ys[keep], len(ys)


def _line(ax: Any, spec: PlotSpec, rel: str, head: Any, base: Any) -> str:
    x, ys = _xy(spec, head, rel)
    note = ""
    multi = len(ys) > 1
    for i, y in enumerate(ys):
        color = f"C{i}" if multi else HEAD
        if base is not None and y in base.columns and (x is None or x in base.columns):
            bx, by, _ = _series(base, x, y)
            ax.plot(bx, by, color=BASE if not multi else color, linestyle="--", linewidth=1.4,
                    label=f"{y} (baseline)" if multi else "baseline")
        hx, hy, n = _series(head, x, y)
        ax.plot(hx, hy, color=color, linewidth=1.5, label=f"{y}" + (" (head)" if base is not None else "")
                if multi else ("head" if base is not None else y))
        if len(hx) < n:
            note = f"{n:,} rows shown as {len(hx):,} points per series (min/max per pixel column)"
    ax.set_xlabel(spec.options.get("x_label", str(x) if x is not None else "row"))
    ax.set_ylabel(spec.options.get("y_label", ys[0] if len(ys) == 1 else "value"))
    return note


def _scatter(ax: Any, spec: PlotSpec, rel: str, head: Any, base: Any) -> str:
    import numpy as np

    x, ys = _xy(spec, head, rel)
    y = ys[0]
    note = ""

    def sample(frame: Any) -> tuple[Any, Any, int]:
        xs = frame[x].to_numpy(dtype=float) if x is not None else np.arange(len(frame), dtype=float)
        vs = frame[y].to_numpy(dtype=float)
        n = len(vs)
        if n > SCATTER_MAX:
            rng = np.random.default_rng(0)  # fixed seed: the same data gives the same picture
            pick = np.unique(np.concatenate([rng.choice(n, SCATTER_MAX, replace=False),
                                             [np.nanargmin(vs), np.nanargmax(vs)]]))
            return xs[pick], vs[pick], n
        return xs, vs, n

    if base is not None and y in base.columns and (x is None or x in base.columns):
        bx, by, _ = sample(base)
        ax.scatter(bx, by, s=8, color=BASE, alpha=0.6, label="baseline")
    hx, hy, n = sample(head)
    ax.scatter(hx, hy, s=8, color=HEAD, alpha=0.8, label="head" if base is not None else y)
    if len(hx) < n:
        note = f"{n:,} points shown as a fixed sample of {len(hx):,} including the extremes"
    ax.set_xlabel(spec.options.get("x_label", str(x) if x is not None else "row"))
    ax.set_ylabel(spec.options.get("y_label", y))
    return note


def _bar(ax: Any, spec: PlotSpec, rel: str, head: Any, base: Any) -> str:
    import numpy as np

    x, ys = _xy(spec, head, rel)
    y = ys[0]
    labels = [str(v) for v in (head[x] if x is not None else range(len(head)))]
    values = head[y].to_numpy(dtype=float)
    note = ""
    if len(labels) > 50:
        order = np.argsort(-np.abs(values))[:50]
        labels, values = [labels[i] for i in order], values[order]
        note = f"the 50 largest of {len(head):,} bars"
    positions = np.arange(len(labels))
    width = 0.4 if base is not None else 0.8
    if base is not None and y in base.columns and (x is None or x in base.columns):
        lookup = dict(zip((str(v) for v in (base[x] if x is not None else range(len(base)))), base[y].astype(float)))
        ax.barh(positions + width / 2, [lookup.get(label, np.nan) for label in labels], height=width, color=BASE,
                label="baseline")
        ax.barh(positions - width / 2, values, height=width, color=HEAD, label="head")
    else:
        ax.barh(positions, values, height=width, color=HEAD)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel(spec.options.get("y_label", y))
    return note


def _curve(ax: Any, head: Any, base: Any, xname: str, yname: str, label: str) -> None:
    import numpy as np

    def one(frame: Any) -> tuple[Any, Any, float]:
        cols = {str(c).lower(): c for c in frame.columns}
        xs = frame[cols[xname]].to_numpy(dtype=float)
        ys = frame[cols[yname]].to_numpy(dtype=float)
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        area = float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2)) if len(xs) > 1 else float("nan")
        return xs, ys, area

    if base is not None and {xname, yname} <= {str(c).lower() for c in base.columns}:
        bx, by, barea = one(base)
        ax.plot(bx, by, color=BASE, linestyle="--", label=f"baseline ({label} {barea:.3f})")
    hx, hy, harea = one(head)
    ax.plot(hx, hy, color=HEAD, label=f"head ({label} {harea:.3f})" if base is not None else f"{label} {harea:.3f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)


def _roc(ax: Any, spec: PlotSpec, rel: str, head: Any, base: Any) -> str:
    _curve(ax, head, base, "fpr", "tpr", "AUC")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":", linewidth=1)
    ax.set_xlabel(spec.options.get("x_label", "false positive rate"))
    ax.set_ylabel(spec.options.get("y_label", "true positive rate"))
    return ""


def _pr(ax: Any, spec: PlotSpec, rel: str, head: Any, base: Any) -> str:
    _curve(ax, head, base, "recall", "precision", "AP")
    ax.set_xlabel(spec.options.get("x_label", "recall"))
    ax.set_ylabel(spec.options.get("y_label", "precision"))
    return ""


def _matrix(spec: PlotSpec, frame: Any, rel: str) -> Any:
    """A square DataFrame (actual x predicted) from pairs or from a precomputed table."""
    import pandas as pd

    actual = _column(frame, spec.options.get("actual"), ACTUAL)
    predicted = _column(frame, spec.options.get("predicted"), PREDICTED)
    if actual and predicted:
        table = pd.crosstab(frame[actual].astype(str), frame[predicted].astype(str))
    elif _is_matrix(frame):
        table = frame.set_index(frame.columns[0])
        table.index = table.index.map(str)
        table.columns = table.columns.map(str)
    else:
        raise UserError(f"{rel}: a confusion matrix needs actual/predicted columns or a square table")
    labels = sorted(set(table.index) | set(table.columns))
    table = table.reindex(index=labels, columns=labels, fill_value=0).astype(float)
    if spec.normalized:
        table = table.div(table.sum(axis=1).replace(0, 1), axis=0)
    return table


def _confusion(spec: PlotSpec, rel: str, head: Any, base: Any) -> tuple[Any, str]:
    import matplotlib.pyplot as plt
    import numpy as np

    matrices = [("head" if base is not None else "", _matrix(spec, head, rel))]
    if base is not None:
        try:
            base_m = _matrix(spec, base, rel)
            labels = sorted(set(matrices[0][1].index) | set(base_m.index))
            h = matrices[0][1].reindex(index=labels, columns=labels, fill_value=0)
            b = base_m.reindex(index=labels, columns=labels, fill_value=0)
            matrices = [("head", h), ("baseline", b), ("difference (head - baseline)", h - b)]
        except UserError:
            pass
    n = len(matrices)
    size = len(matrices[0][1])
    fig, axes = plt.subplots(1, n, figsize=(max(4.5, 4.2 * n), 4.2), squeeze=False)
    for ax, (title, table) in zip(axes[0], matrices):
        diff = title.startswith("difference")
        values = table.to_numpy()
        if diff:
            bound = max(float(np.abs(values).max()), 1e-9)
            image = ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound)
        else:
            image = ax.imshow(values, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(size), list(table.columns), rotation=45, ha="right")
        ax.set_yticks(range(size), list(table.index))
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.grid(False)
        ax.set_title(title or spec.options.get("title", rel))
        if size <= 20:
            fmt = "{:+.0f}" if diff else ("{:.2f}" if spec.normalized else "{:.0f}")
            for (i, j), value in np.ndenumerate(values):
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8,
                        color="white" if not diff and value > values.max() / 2 else "black")
    if n > 1:
        fig.suptitle(spec.options.get("title", rel))
    return fig, ""
