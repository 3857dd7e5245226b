"""Painting a plots.canvas.Figure into a Pillow image: boxes, limits, ticks, marks, text and the legend.

Sizes follow matplotlib's defaults in points (spines and ticks 0.8 pt, ticks 3.5 pt long, 3.5 pt from their
labels, the title 6 pt above the axes and 1.2 times the font size), so the plots read like the matplotlib
figures reviewers know. The plot area is painted on an image of its own and pasted in: marks are clipped to
it, as matplotlib clips them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cml_action.plots.canvas import (
    FONT_SIZE,
    GRID,
    LEGEND_PLACES,
    SCALE,
    Axes,
    Figure,
    Mark,
    colours_of,
    faded,
    font,
    nice_ticks,
    tick_labels,
)

BLACK = (0, 0, 0)
EDGE = (204, 204, 204)
MARGIN = 0.05  # of the data span on each side, as matplotlib's axes.xmargin/ymargin


@dataclass
class Box:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass
class View:
    """An axes' box in pixels and its data limits: where a data point lands."""

    box: Box
    x: tuple[float, float]
    y: tuple[float, float]
    y_down: bool  # y grows downwards (an inverted axis, or a matrix's rows)

    def px(self, xs: Any) -> Any:
        return self.box.left + (xs - self.x[0]) / (self.x[1] - self.x[0]) * self.box.width

    def py(self, ys: Any) -> Any:
        share = (ys - self.y[0]) / (self.y[1] - self.y[0])
        return self.box.top + share * self.box.height if self.y_down else self.box.bottom - share * self.box.height


def paint(figure: Figure) -> Any:
    from PIL import Image, ImageDraw

    width, height = round(figure.figsize[0] * figure.dpi), round(figure.figsize[1] * figure.dpi)
    image = Image.new("RGB", (width * SCALE, height * SCALE), "white")
    draw = ImageDraw.Draw(image)
    pt = figure.dpi / 72 * SCALE
    boxes = _boxes(figure, width * SCALE, height * SCALE)
    columns = figure.shape[1]
    for i, (ax, box) in enumerate(zip(figure.axes, boxes)):
        if ax.visible:  # left of a box: the image's edge, or the right edge of its neighbour in the grid
            _axes(image, draw, ax, box, pt, boxes[i - 1].right if i % columns else 0.0)
    if figure.suptitle_text:
        draw.text((width * SCALE / 2, 0.02 * height * SCALE), figure.suptitle_text, fill=BLACK,
                  font=font(round(FONT_SIZE * 1.2 * pt)), anchor="ma")
    return image.reduce(SCALE)


def _boxes(figure: Figure, width: float, height: float) -> list[Box]:
    """Each axes' box, as matplotlib's subplot grid places them (spaces in shares of a mean axes)."""
    rows, columns = figure.shape
    f = figure.layout
    cell_w = (f.right - f.left) / (columns + f.wspace * (columns - 1))
    cell_h = (f.top - f.bottom) / (rows + f.hspace * (rows - 1))
    boxes = []
    for i in range(rows * columns):
        row, column = divmod(i, columns)
        x0 = f.left + column * cell_w * (1 + f.wspace)
        y1 = f.top - row * cell_h * (1 + f.hspace)
        boxes.append(Box(x0 * width, (1 - y1) * height, (x0 + cell_w) * width, (1 - y1 + cell_h) * height))
    return boxes


# --- limits and ticks ------------------------------------------------------------------------------
def _extent(values: Any) -> tuple[float, float] | None:
    import numpy as np

    if values is None or not len(values) or not np.isfinite(values).any():
        return None
    return float(np.nanmin(values)), float(np.nanmax(values))


def _spans(ax: Axes) -> tuple[list, list, set, set]:
    """Data extents along x and y, and the sticky values of each: edges that get no margin, as matplotlib
    keeps bars on 0 and an image on its outer cell edges."""
    xs, ys, x_sticky, y_sticky = [], [], set(), set()
    for mark in ax.marks:
        if mark.kind == "image":
            rows, columns = mark.values.shape
            xs.append((-0.5, columns - 0.5))
            ys.append((-0.5, rows - 0.5))
            x_sticky |= {-0.5, columns - 0.5}
            y_sticky |= {-0.5, rows - 0.5}
        elif mark.kind == "bars":
            found = _extent(mark.xs) or (0.0, 0.0)
            xs.append((min(0.0, found[0]), max(0.0, found[1])))
            x_sticky.add(0.0)
            extent = _extent(mark.ys)
            if extent:
                ys.append((extent[0] - mark.width / 2, extent[1] + mark.width / 2))
        else:
            xs.append(_extent(mark.xs))
            ys.append(_extent(mark.ys))
    return [e for e in xs if e], [e for e in ys if e], x_sticky, y_sticky


def _limit(extents: list, sticky: set, given: tuple[float, float] | None) -> tuple[float, float]:
    if given is not None and given[0] != given[1]:
        return given
    if not extents:
        return 0.0, 1.0
    low, high = min(e[0] for e in extents), max(e[1] for e in extents)
    if low == high:
        pad = abs(low) * 0.05 or 0.5
        return low - pad, high + pad
    pad = (high - low) * MARGIN
    return (low if low in sticky else low - pad), (high if high in sticky else high + pad)


def _view(ax: Axes, box: Box) -> View:
    xs, ys, x_sticky, y_sticky = _spans(ax)
    x = _limit(xs, x_sticky, ax.xlim)
    y = _limit(ys, y_sticky, ax.ylim)
    images = [m for m in ax.marks if m.kind == "image"]
    if images:  # square cells, the box shrunk around its centre, as imshow's equal aspect does
        per = min(box.width / (x[1] - x[0]), box.height / (y[1] - y[0]))
        cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
        w, h = per * (x[1] - x[0]) / 2, per * (y[1] - y[0]) / 2
        box = Box(cx - w, cy - h, cx + w, cy + h)
    return View(box, x, y, ax.y_inverted)


def _ticks(given: Any, limits: tuple[float, float]) -> tuple[list[float], list[str]]:
    low, high = min(limits), max(limits)
    slack = (high - low) * 1e-9
    if given.positions is not None:
        pairs = [(p, given.labels[i] if given.labels else None) for i, p in enumerate(given.positions)
                 if low - slack <= p <= high + slack]
        positions = [p for p, _ in pairs]
        labels = [t for _, t in pairs] if given.labels else tick_labels(positions)
        return positions, [str(t) for t in labels]
    positions = nice_ticks(low, high)
    return positions, tick_labels(positions)


# --- an axes -----------------------------------------------------------------------------------------
def _axes(image: Any, draw: Any, ax: Axes, box: Box, pt: float, floor: float) -> None:
    from PIL import Image, ImageDraw

    view = _view(ax, box)
    xt, xl = _ticks(ax.xticks, view.x)
    yt, yl = _ticks(ax.yticks, view.y)
    left = max(box.left, floor + _left_space(ax, yl, pt))
    bottom = min(box.bottom, image.height - _bottom_space(ax, xl, pt))
    if (left, bottom) != (box.left, box.bottom):  # long tick labels: the axes give way, the labels stay whole
        view = _view(ax, Box(left, box.top, box.right, bottom))
    box = view.box
    area = Image.new("RGB", (max(1, round(box.width)), max(1, round(box.height))), "white")
    shifted = View(Box(0, 0, area.width, area.height), view.x, view.y, view.y_down)
    pen = ImageDraw.Draw(area)
    if ax.grid_on:
        for x in shifted.px(_array(xt)).tolist():
            pen.line([(x, 0), (x, area.height)], fill=GRID, width=max(1, round(0.8 * pt)))
        for y in shifted.py(_array(yt)).tolist():
            pen.line([(0, y), (area.width, y)], fill=GRID, width=max(1, round(0.8 * pt)))
    for mark in sorted(ax.marks, key=lambda m: m.zorder):
        MARKS[mark.kind](area, pen, mark, shifted, pt)
    for note in ax.notes:
        pen.text((float(shifted.px(note.x)), float(shifted.py(note.y))), note.text, fill=note.color,
                 font=font(round(note.size * pt)), anchor=_anchor(note.ha, note.va))
    if ax.legend_at and ax.get_legend_handles_labels()[0]:
        _legend(area, pen, ax, shifted, pt)
    image.paste(area, (round(box.left), round(box.top)))
    _frame(image, draw, ax, view, (xt, xl), (yt, yl), pt)


def _left_space(ax: Axes, labels: list[str], pt: float) -> float:
    """Pixels left of the axes that its y tick labels and y label take, with a small margin."""
    size = font(round(FONT_SIZE * pt))
    widest = max((size.getlength(text) for text in labels), default=0.0)
    label = (4 * pt + FONT_SIZE * pt * 1.2) if ax.ylabel else 0.0
    return 3.5 * pt + 3.5 * pt + widest + label + 4 * pt


def _bottom_space(ax: Axes, labels: list[str], pt: float) -> float:
    """Pixels below the axes that its x tick labels (turned or not) and x label take, with a small margin."""
    size = font(round(FONT_SIZE * pt))
    line = FONT_SIZE * pt * 1.2
    turn = math.radians(ax.xticks.rotation)
    tallest = max((size.getlength(text) * abs(math.sin(turn)) + line * abs(math.cos(turn)) for text in labels),
                  default=0.0)
    return 3.5 * pt + 3.5 * pt + tallest + ((4 * pt + line) if ax.xlabel else 0.0) + 2 * pt


def _array(values: list[float]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=float)


def _anchor(ha: str, va: str) -> str:
    return {"left": "l", "center": "m", "right": "r"}.get(ha, "m") + \
        {"top": "t", "center": "m", "bottom": "b", "baseline": "s"}.get(va, "m")


def _frame(image: Any, draw: Any, ax: Axes, view: View, x_ticks: tuple, y_ticks: tuple, pt: float) -> None:
    """Spines, tick marks and labels, axis labels and the title, around the plot area."""
    box, line = view.box, max(1, round(0.8 * pt))
    draw.rectangle([round(box.left), round(box.top), round(box.left + box.width), round(box.top + box.height)],
                   outline=BLACK, width=line)
    size, tick, pad = font(round(FONT_SIZE * pt)), 3.5 * pt, 3.5 * pt
    label_bottom = box.bottom + tick + pad
    for x, text in zip(view.px(_array(x_ticks[0])).tolist(), x_ticks[1]):
        draw.line([(x, box.bottom), (x, box.bottom + tick)], fill=BLACK, width=line)
        if ax.xticks.rotation:
            low = _rotated(image, (x, box.bottom + tick + pad), text, size, ax.xticks.rotation, ax.xticks.ha)
            label_bottom = max(label_bottom, low)
        else:
            draw.text((x, box.bottom + tick + pad), text, fill=BLACK, font=size, anchor="ma")
            label_bottom = max(label_bottom, box.bottom + tick + pad + size.getbbox("0", anchor="la")[3])
    widest = 0.0
    for y, text in zip(view.py(_array(y_ticks[0])).tolist(), y_ticks[1]):
        draw.line([(box.left - tick, y), (box.left, y)], fill=BLACK, width=line)
        draw.text((box.left - tick - pad, y), text, fill=BLACK, font=size, anchor="rm")
        widest = max(widest, size.getlength(text))
    if ax.xlabel:
        draw.text(((box.left + box.right) / 2, label_bottom + 4 * pt), ax.xlabel, fill=BLACK, font=size, anchor="ma")
    if ax.ylabel:
        _rotated(image, (box.left - tick - pad - widest - 4 * pt, (box.top + box.bottom) / 2), ax.ylabel, size, 90,
                 "side")
    if ax.title:
        draw.text(((box.left + box.right) / 2, box.top - 6 * pt), ax.title, fill=BLACK,
                  font=font(round(FONT_SIZE * 1.2 * pt)), anchor="md")


def _rotated(image: Any, at: tuple[float, float], text: str, size: Any, angle: float, ha: str) -> float:
    """Text turned by `angle` degrees: "right" puts its end at `at` (a tick label below the axis), "center"
    centres it below `at`, "side" centres it left of `at` (the y label). Returns its lowest pixel row."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = size.getbbox(text, anchor="la")
    mask = Image.new("L", (max(1, right - left + 2), max(1, bottom - top + 2)), 0)
    ImageDraw.Draw(mask).text((1 - left, 1 - top), text, fill=255, font=size, anchor="la")
    turned = mask.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    x, y = at
    if ha == "side":
        corner = (x - turned.width, y - turned.height / 2)
    elif ha == "right":
        corner = (x - turned.width, y)
    else:
        corner = (x - turned.width / 2, y)
    position = (round(corner[0]), round(corner[1]))
    image.paste(BLACK, (*position, position[0] + turned.width, position[1] + turned.height), turned)
    return corner[1] + turned.height


# --- marks ---------------------------------------------------------------------------------------------
def _pieces(points: Any) -> list[Any]:
    """The runs of finite points: a line breaks at a missing value, as matplotlib's does."""
    import numpy as np

    finite = np.isfinite(points).all(axis=1)
    if finite.all():
        return [points]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(int), [0]])))
    return [points[a:b] for a, b in zip(edges[::2], edges[1::2])]


def _dashed(points: Any, pattern: tuple[float, ...]) -> list[Any]:
    """The 'on' stretches of a dash pattern (pixels, on/off alternating) walked along a polyline."""
    import numpy as np

    steps = np.hypot(*np.diff(points, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    total, period = float(along[-1]), sum(pattern)
    out, start = [], 0.0
    while start < total and period > 0:
        for i, length in enumerate(pattern):
            if i % 2 == 0:
                stop = min(start + length, total)
                inside = (along > start) & (along < stop)
                ends = [np.array([np.interp(d, along, points[:, 0]), np.interp(d, along, points[:, 1])])
                        for d in (start, stop)]
                out.append(np.vstack([ends[0], points[inside], ends[1]]))
            start += length
            if start >= total:
                break
    return out


def _line(area: Any, pen: Any, mark: Mark, view: View, pt: float) -> None:
    import numpy as np

    points = np.column_stack([view.px(mark.xs), view.py(mark.ys)])
    width = max(1, round(mark.width * pt))
    pattern = tuple(v * mark.width * pt for v in mark.dashes)
    for piece in _pieces(points):
        if len(piece) == 1:  # a point with no neighbour would be invisible as a line: a dot shows it
            x, y = piece[0].tolist()
            r = max(width, 3 * pt) / 2
            pen.ellipse([x - r, y - r, x + r, y + r], fill=mark.color)
            continue
        for run in (_dashed(piece, pattern) if pattern else [piece]):
            pen.line(list(map(tuple, run.tolist())), fill=mark.color, width=width, joint="curve")


def _dots(area: Any, pen: Any, mark: Mark, view: View, pt: float) -> None:
    """Translucent dots blend as matplotlib's do: where they pile up, the colour deepens."""
    import numpy as np
    from PIL import ImageDraw

    radius = mark.width * pt / 2
    points = np.column_stack([view.px(mark.xs), view.py(mark.ys)])
    blend = ImageDraw.Draw(area, "RGBA") if mark.alpha < 1 else pen
    fill = (*mark.color, round(mark.alpha * 255))
    for x, y in points[np.isfinite(points).all(axis=1)].tolist():
        blend.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)


def _bars(area: Any, pen: Any, mark: Mark, view: View, pt: float) -> None:
    import numpy as np

    zero = float(view.px(0.0))
    for y, value in zip(mark.ys.tolist(), mark.xs.tolist()):
        if not np.isfinite(value):
            continue
        x = float(view.px(value))
        y0, y1 = sorted((float(view.py(y - mark.width / 2)), float(view.py(y + mark.width / 2))))
        pen.rectangle([min(zero, x), y0, max(zero, x), y1], fill=mark.color)


def _image(area: Any, pen: Any, mark: Mark, view: View, pt: float) -> None:
    import numpy as np
    from PIL import Image

    values = mark.values
    low, high = mark.limits
    share = (values - low) / (high - low) if high > low else np.full(values.shape, 0.5)
    colours = colours_of(mark.cmap, np.clip(np.nan_to_num(share), 0.0, 1.0))
    rows, columns = values.shape
    left, right = float(view.px(-0.5)), float(view.px(columns - 0.5))
    top, bottom = sorted((float(view.py(-0.5)), float(view.py(rows - 0.5))))
    cells = Image.fromarray(colours, "RGB")
    if not view.y_down:
        cells = cells.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    size = (max(1, round(right - left)), max(1, round(bottom - top)))
    area.paste(cells.resize(size, Image.Resampling.NEAREST), (round(left), round(top)))


MARKS = {"line": _line, "dots": _dots, "bars": _bars, "image": _image}


# --- the legend ----------------------------------------------------------------------------------------
def _legend(area: Any, pen: Any, ax: Axes, view: View, pt: float) -> None:
    handles, labels = ax.get_legend_handles_labels()
    em = ax.legend_size * pt
    text = font(round(em))
    row = em * 1.25
    handle, gap, border, inset = 2.0 * em, 0.8 * em, 0.4 * em, 0.5 * em
    width = 2 * border + handle + gap + max(text.getlength(label) for label in labels)
    height = 2 * border + row * len(labels) + 0.5 * em * (len(labels) - 1)
    place = ax.legend_at if ax.legend_at in LEGEND_PLACES else _best(ax, view, width, height, inset)
    left, top = _corner(place, view.box, width, height, inset)
    pen.rounded_rectangle([left, top, left + width, top + height], radius=0.3 * em, fill="white", outline=EDGE,
                          width=max(1, round(0.8 * pt)))
    for i, (mark, label) in enumerate(zip(handles, labels)):
        y = top + border + i * (row + 0.5 * em) + row / 2
        _sample(pen, mark, left + border, y, handle, em, pt)
        pen.text((left + border + handle + gap, y), label, fill=BLACK, font=text, anchor="lm")


def _sample(pen: Any, mark: Mark, x: float, y: float, length: float, em: float, pt: float) -> None:
    import numpy as np

    if mark.kind == "line":
        run = np.array([[x, y], [x + length, y]])
        pattern = tuple(v * mark.width * pt for v in mark.dashes)
        for piece in (_dashed(run, pattern) if pattern else [run]):
            pen.line(list(map(tuple, piece.tolist())), fill=mark.color, width=max(1, round(mark.width * pt)))
    elif mark.kind == "dots":
        r = max(mark.width * pt / 2, 0.25 * em)
        pen.ellipse([x + length / 2 - r, y - r, x + length / 2 + r, y + r], fill=faded(mark.color, mark.alpha))
    else:
        pen.rectangle([x, y - 0.35 * em, x + length, y + 0.35 * em], fill=mark.color)


def _corner(place: str, box: Box, width: float, height: float, inset: float) -> tuple[float, float]:
    vertical, horizontal = place.split()
    left = {"left": inset, "right": box.width - inset - width}.get(horizontal, (box.width - width) / 2)
    top = inset if vertical == "upper" else box.height - inset - height
    return left, top


def _best(ax: Axes, view: View, width: float, height: float, inset: float) -> str:
    """The place covering the fewest drawn points (of up to 2,000 per mark), the first such in LEGEND_PLACES."""
    import numpy as np

    points = []
    for mark in ax.marks:
        if mark.kind in ("line", "dots"):
            pick = np.linspace(0, len(mark.xs) - 1, min(len(mark.xs), 2000)).astype(int) if len(mark.xs) else []
            points.append(np.column_stack([view.px(mark.xs[pick]), view.py(mark.ys[pick])]))
        elif mark.kind == "bars":
            points.append(np.column_stack([view.px(mark.xs), view.py(mark.ys)]))
    cloud = np.vstack(points) if points else np.zeros((0, 2))

    def covered(place: str) -> int:
        left, top = _corner(place, view.box, width, height, inset)
        inside = (cloud[:, 0] >= left) & (cloud[:, 0] <= left + width) & (cloud[:, 1] >= top) & \
            (cloud[:, 1] <= top + height)
        return int(inside.sum())

    return min(LEGEND_PLACES, key=covered)
