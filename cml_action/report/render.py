"""Markdown for a reviewer who has ten seconds: verdict and headline first, details below, long parts folded."""

from __future__ import annotations

import math
from urllib.parse import quote
from dataclasses import dataclass, field

from cml_action.ci.context import CIContext
from cml_action.gitrefs import Baseline
from cml_action.metrics import MetricRow, Value, numeric, same
from cml_action.report.escape import code, code_block, inline, prose
from cml_action.report.model import Section
from cml_action.train import TrainResult
from cml_action.workspace_files import Refused


VALUE_CHARS = 200  # a longer value (a list shown as JSON, a pasted blob) is cut in the table


@dataclass(frozen=True)
class Figure:
    path: str  # relative to the report file's folder
    caption: str = ""
    beside: tuple[tuple[str, str], ...] = ()  # (baseline label, image path): an image plot at each baseline
    head_label: str = "head"


@dataclass
class ReportData:
    title: str
    ctx: CIContext
    sha: str = ""
    branch: str = ""
    baseline: Baseline | None = None
    training: TrainResult | None = None
    more_baselines: list[Baseline] = field(default_factory=list)  # further refs of `baseline`, one column each
    head_label: str = "head"  # "workspace" when the baseline is the last commit of a local checkout
    metrics: list[MetricRow] = field(default_factory=list)
    params: list[MetricRow] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    gates_status: str = "none"  # passed | failed | none
    gates_markdown: str = ""
    headline: str = ""
    sections: list[Section] = field(default_factory=list)  # notebooks, TensorBoard, the user's own markdown...
    warnings: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # report-folder images the user's markdown declared


def fmt(value: Value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 1e-12 < abs(value) < 1e-4:  # 0.00008, not 8e-05
            return f"{value:.{-math.floor(math.log10(abs(value))) + 5}f}".rstrip("0")
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _signed(delta: float) -> str:
    """A delta with four significant digits, never in exponent form for the sizes metrics have."""
    size = abs(delta)
    if size == 0 or size >= 1e-4 or size < 1e-12:
        return f"{delta:+.4g}"
    decimals = -math.floor(math.log10(size)) + 3
    return f"{delta:+.{decimals}f}".rstrip("0").rstrip(".")


def change(head: Value, base: Value) -> str:
    h, b = numeric(head), numeric(base)
    if head is None and base is not None:
        return "removed"
    if base is None and head is not None:
        return "new"
    if h is None or b is None:
        return "" if same(head, base) else "changed"
    if math.isnan(h) or math.isnan(b):
        return "" if same(head, base) else "NaN"
    delta = h - b
    if delta == 0:
        return "="
    arrow = "▲" if delta > 0 else "▼"
    pct = f" ({delta / abs(b) * 100:+.2f}%)" if b != 0 else ""
    return f"{arrow} {_signed(delta)}{pct}"


def _cell(text: str) -> str:
    return inline(text)


def _key_names(rows: list[MetricRow]) -> dict[tuple[str, str], str]:
    several = len({r.file for r in rows}) > 1
    return {(r.file, r.key): f"{r.file}: {r.key}" if several else r.key for r in rows}


def _base_cell(row: MetricRow, index: int) -> str:
    if index < len(row.unread) and row.unread[index]:
        return "unreadable"
    return _cell(fmt(row.base if index == 0 else row.more[index - 1] if index - 1 < len(row.more) else None))


def _head_cell(row: MetricRow) -> str:
    return _cell(fmt(row.head)) + (" (stale)" if row.stale else "")


def _change_cell(row: MetricRow, index: int) -> str:
    if index < len(row.unread) and row.unread[index]:
        return "?"
    if row.stale:
        return "stale"
    return change(row.head, row.base if index == 0 else row.more[index - 1] if index - 1 < len(row.more) else None)


def metrics_table(rows: list[MetricRow], baseline_label: str | None, more_labels: tuple[str, ...] = (),
                  head_label: str = "head") -> str:
    """One column per baseline; with several baselines, one change column per baseline too."""
    names = _key_names(rows)
    if baseline_label is None:
        lines = ["| Metric | Value |", "|---|--:|"]
        lines += [f"| {_cell(names[(r.file, r.key)])} | {_head_cell(r)} |" for r in rows]
        return "\n".join(lines)
    labels = [baseline_label, *more_labels]
    if len(labels) == 1:
        lines = [f"| Metric | {_cell(baseline_label)} | {_cell(head_label)} | Change |", "|---|--:|--:|--:|"]
    else:
        changes = " | ".join(f"Change vs {_cell(label)}" for label in labels)
        lines = [f"| Metric | {' | '.join(_cell(label) for label in labels)} | {_cell(head_label)} | {changes} |",
                 "|---|" + "--:|" * (2 * len(labels) + 1)]
    for r in rows:
        bases = " | ".join(_base_cell(r, i) for i in range(len(labels)))
        changes = " | ".join(_change_cell(r, i) for i in range(len(labels)))
        lines.append(f"| {_cell(names[(r.file, r.key)])} | {bases} | {_head_cell(r)} | {changes} |")
    return "\n".join(lines)


def _changed(row: MetricRow) -> bool:
    return row.changed or any(not same(row.head, v) for v in row.more)


def params_table(rows: list[MetricRow], baseline_label: str | None, more_labels: tuple[str, ...] = (),
                 head_label: str = "head") -> str:
    """Changed parameters first (they explain the metric changes), unchanged ones folded when many."""
    names = _key_names(rows)
    if baseline_label is None:
        lines = ["| Parameter | Value |", "|---|---|"]
        lines += [f"| {_cell(names[(r.file, r.key)])} | {_cell(fmt(r.head))} |" for r in rows]
        return "\n".join(lines)
    labels = [baseline_label, *more_labels]
    changed = [r for r in rows if _changed(r)]
    unchanged = [r for r in rows if not _changed(r)]
    head = [f"| Parameter | {' | '.join(_cell(label) for label in labels)} | {_cell(head_label)} |",
            "|---|" + "---|" * (len(labels) + 1)]

    def line(r: MetricRow, bold: bool) -> str:
        mark = "**" if bold else ""
        bases = " | ".join(_base_cell(r, i) for i in range(len(labels)))
        return f"| {mark}{_cell(names[(r.file, r.key)])}{mark} | {bases} | {mark}{_cell(fmt(r.head))}{mark} |"

    body = [line(r, True) for r in changed]
    rest = [line(r, False) for r in unchanged]
    if len(rest) <= 10 or not changed:
        return "\n".join(head + body + rest)
    table = "\n".join(head + body)
    folded = "\n".join(head + rest)
    return f"{table}\n\n<details><summary>{len(rest)} unchanged parameters</summary>\n\n{folded}\n\n</details>"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h {m:02d}m"


def headline_row(data: ReportData) -> MetricRow | None:
    if not data.metrics:
        return None
    if data.headline:
        for r in data.metrics:
            if data.headline in (r.key, f"{r.file}:{r.key}"):
                return r
    return data.metrics[0]


def summary_line(data: ReportData) -> str:
    parts: list[str] = []
    if data.training is not None and data.training.timed_out_after_s:
        parts.append(f"⏱️ **training timed out** (after {_duration(data.training.timed_out_after_s)})")
    elif data.training is not None and not data.training.ok:
        parts.append(f"❌ **training failed** (exit {data.training.exit_code})")
    if data.gates_status == "passed":
        parts.append("✅ **gates passed**")
    elif data.gates_status == "failed":
        parts.append("❌ **gates failed**")
    row = headline_row(data)
    if row is not None:
        text = f"**{inline(row.key)}** {inline(fmt(row.head))}"
        if row.stale:
            text += " (stale: not written by this run)"
        elif data.baseline is not None and row.base is not None:
            text += f" ({change(row.head, row.base)} vs {inline(data.baseline.label)})"
        parts.append(text)
    if data.ctx.run_url:
        parts.append(f"[full report]({data.ctx.run_url})")
    return " · ".join(parts)


def context_line(data: ReportData) -> str:
    bits: list[str] = []
    if data.sha:
        bits.append(f"commit `{data.sha[:7]}`")
    if data.branch:
        bits.append(f"on {code(data.branch)}")
    if data.baseline is not None:
        refs = [data.baseline, *data.more_baselines]
        bits.append("vs " + ", ".join(code(b.label) if b.label == b.sha[:7] else f"{code(b.label)} (`{b.sha[:7]}`)"
                                      for b in refs))
    else:
        bits.append("no baseline")
    if data.ctx.run_url:
        bits.append(f"[run]({data.ctx.run_url})")
    if data.training is not None:
        bits.append(f"trained in {_duration(data.training.duration_s)}")
        if data.training.hardware:
            bits.append(data.training.hardware)
    return " · ".join(bits)


def render(data: ReportData) -> str:
    """The full report. Image references stay local paths; the publisher uploads and rewrites them."""
    out: list[str] = [f"## {inline(data.title)}", ""]
    summary = summary_line(data)
    if summary:
        out += [summary, ""]
    out += [f"<sub>{context_line(data)}</sub>", ""]
    for warning in data.warnings:
        out += [f"> ⚠️ {prose(warning)}", ""]
    if data.training is not None and not data.training.ok:
        log = "\n".join(data.training.tail) or "(no output)"
        out += [
            _failure_line(data.training),
            "",
            f"<details><summary>Last {len(data.training.tail)} log lines</summary>",
            "",
            code_block(log),
            "",
            "</details>",
            "",
        ]
    if data.gates_markdown:
        out += ["### Quality gates", "", data.gates_markdown, ""]
    label = data.baseline.label if data.baseline is not None else None
    more = tuple(b.label for b in data.more_baselines)
    if data.metrics:
        out += ["### Metrics", "", metrics_table(data.metrics, label, more, data.head_label), ""]
    if data.params:
        out += ["### Parameters", "", params_table(data.params, label, more, data.head_label), ""]
    out += _plots(data)
    for section in data.sections:
        out += _section(section)
    out += ["---", "<sub>Generated by cml-action</sub>", ""]
    return "\n".join(out)


def _plots(data: ReportData) -> list[str]:
    if not (data.figures or data.refused):
        return []
    out = ["### Plots", ""]
    for fig in data.figures:
        alt = _cell(fig.path.rsplit("/", 1)[-1])
        if fig.beside:
            out += _side_by_side(fig, alt)
        else:
            out += [f"![{alt}]({quote(fig.path)})", ""]
        if fig.caption:
            out += [f"<sub>{prose(fig.caption)}</sub>", ""]
    for refused in data.refused:
        out += [f"> ⚠️ {code(refused.path)} was not included: {prose(refused.reason)}.", ""]
    return out


def _side_by_side(fig: Figure, alt: str) -> list[str]:
    """An image plot at each baseline and at head, in one table row (as DVC users' own workflows show them)."""
    labels = [label for label, _ in fig.beside] + [fig.head_label]
    paths = [path for _, path in fig.beside] + [fig.path]
    return [f"| {' | '.join(_cell(label) for label in labels)} |", "|" + "---|" * len(labels),
            "| " + " | ".join(f"![{alt} ({_cell(label)})]({quote(path)})" for label, path in zip(labels[:-1], paths))
            + f" | ![{alt}]({quote(fig.path)}) |", ""]


def _failure_line(training: TrainResult) -> str:
    command = code(training.command.strip().splitlines()[0] if training.command.strip() else training.command)
    if training.timed_out_after_s:
        return (f"**Training timed out**: {command} was stopped at the time limit "
                f"({_duration(training.timed_out_after_s)}, `timeout`).")
    return (f"**Training failed**: {command} exited with code {training.exit_code} "
            f"after {_duration(training.duration_s)}.")


def _section(section: Section) -> list[str]:
    title = inline(section.title)
    if section.collapsible:
        open_attr = " open" if section.open else ""
        return [f"<details{open_attr}><summary><b>{title}</b></summary>", "", section.body, "", "</details>", ""]
    return [f"### {title}", "", section.body, ""] if section.title else [section.body, ""]
