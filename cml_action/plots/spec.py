"""The `plots` input: one entry a line, `path-or-glob [key=value ...]`, shell-style quoting.

A line holding only paths (`plots: a.png b.csv`) is several entries; options on a line apply to every
path of that line. Errors name the line, since the input usually is a YAML block of several lines.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from cml_action.errors import UserError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"})
KINDS = ("auto", "line", "scatter", "bar", "confusion", "roc", "pr")
KEYS = ("x", "y", "type", "title", "x_label", "y_label", "template", "actual", "predicted")
# DVC's plot templates, in our kinds
TEMPLATES = {
    "linear": "line", "simple": "line", "smooth": "line", "scatter": "scatter", "scatter_jitter": "scatter",
    "confusion": "confusion", "confusion_normalized": "confusion", "bar_horizontal": "bar",
    "bar_horizontal_sorted": "bar",
}


@dataclass(frozen=True)
class PlotFile:
    """One data file of a declaration that names several (DVC's `y: {train.json: tpr, test.json: tpr}`)."""

    path: str
    x: str | None = None
    ys: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlotSpec:
    """One plot: a path or glob (each match its own plot), or, with `files`, one declaration whose files are
    all drawn in the same axes, as `dvc plots diff` draws them; `pattern` is then the declaration's id."""

    pattern: str
    options: dict[str, str] = field(default_factory=dict)
    files: tuple[PlotFile, ...] = ()

    @property
    def kind(self) -> str:
        if "type" in self.options:
            return self.options["type"]
        return TEMPLATES.get(self.options.get("template", ""), "auto")

    @property
    def ys(self) -> list[str]:
        return [y for y in self.options.get("y", "").split(",") if y]

    @property
    def normalized(self) -> bool:
        return self.options.get("template") == "confusion_normalized"


def parse_plot_entries(entries: list[str]) -> list[PlotSpec]:
    specs: list[PlotSpec] = []
    for number, line in enumerate(entries, start=1):
        try:
            tokens = shlex.split(line, comments=False)
        except ValueError as exc:
            raise UserError(f"plots line {number}: {exc} in {line.strip()!r}") from None
        paths, options = [], {}
        for token in tokens:
            key, sep, value = token.partition("=")
            if not sep or "/" in key or "." in key:
                paths.append(token)
                continue
            if key not in KEYS:
                raise UserError(f"plots line {number}: unknown option {key!r} (known: {', '.join(KEYS)})")
            if not value:
                raise UserError(f"plots line {number}: option {key!r} has no value")
            options[key] = value
        _check(number, paths, options)
        specs.extend(PlotSpec(path, dict(options)) for path in paths)
    return specs


def _check(number: int, paths: list[str], options: dict[str, str]) -> None:
    if "type" in options and options["type"] not in KINDS:
        raise UserError(f"plots line {number}: type must be one of {', '.join(KINDS)}, got {options['type']!r}")
    if "template" in options and options["template"] not in TEMPLATES:
        raise UserError(f"plots line {number}: unknown template {options['template']!r} "
                        f"(known: {', '.join(sorted(TEMPLATES))})")
    if options and not paths:
        raise UserError(f"plots line {number}: options without a file")
