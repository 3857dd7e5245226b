"""Quality gates: `<metric> <op> <expr>` a line, evaluated against the report's metric rows.

expr is a number, `baseline`, or `baseline +/- n` with an optional `%` (relative to the baseline's
magnitude). A hand-written tokenizer gives errors with line and column, and nothing is ever eval'd.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable

from cml_action.errors import UserError
from cml_action.metrics import MetricRow
from cml_action.report.escape import code, prose

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/\[\]]*(?::[A-Za-z0-9_][A-Za-z0-9_.\-\[\]]*)?")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str  # flattened key, optionally "file:key"
    op: str
    number: float | None  # absolute threshold, or the offset from the baseline
    relative_to_baseline: bool
    percent: bool


@dataclass(frozen=True)
class GateResult:
    rule: Rule
    value: float | None
    threshold: float | None
    ok: bool | None  # None: skipped
    reason: str = ""


@dataclass(frozen=True)
class GateResults:
    results: tuple[GateResult, ...]

    @property
    def status(self) -> str:
        decided = [r for r in self.results if r.ok is not None]
        if not self.results:
            return "none"
        return "failed" if any(r.ok is False for r in decided) else "passed"


def _fail(number: int, column: int, message: str) -> UserError:
    return UserError(f"gates line {number}, column {column}: {message}")


def _parse_line(text: str, number: int) -> Rule:
    pos = 0
    length = len(text)

    def skip() -> None:
        nonlocal pos
        while pos < length and text[pos] in " \t":
            pos += 1

    skip()
    match = _NAME.match(text, pos)
    if not match:
        raise _fail(number, pos + 1, "expected a metric name")
    metric = match.group(0)
    pos = match.end()
    skip()
    op = next((o for o in (">=", "<=", "==", ">", "<") if text.startswith(o, pos)), None)
    if op is None:
        raise _fail(number, pos + 1, "expected one of >=, >, <=, <, == after the metric name")
    pos += len(op)
    skip()
    relative, percent, value = False, False, None
    if text.startswith("baseline", pos):
        relative = True
        pos += len("baseline")
        skip()
        if pos < length and text[pos] in "+-±":
            sign = -1.0 if text[pos] == "-" else 1.0
            if text[pos] == "±":
                raise _fail(number, pos + 1, "use + or -: ± has no single threshold")
            pos += 1
            skip()
            match = _NUMBER.match(text, pos)
            if not match or match.group(0)[0] in "+-":
                raise _fail(number, pos + 1, f"expected a number after '{'-' if sign < 0 else '+'}'")
            value = sign * float(match.group(0))
            pos = match.end()
            if pos < length and text[pos] == "%":
                percent = True
                pos += 1
        else:
            value = 0.0
    else:
        match = _NUMBER.match(text, pos)
        if not match:
            raise _fail(number, pos + 1, f"expected a number or 'baseline' after '{op}'")
        value = float(match.group(0))
        pos = match.end()
    skip()
    if pos < length:
        raise _fail(number, pos + 1, f"unexpected {text[pos:pos + 10]!r}")
    if value is not None and not math.isfinite(value):
        raise _fail(number, 1, "the threshold must be a finite number")
    return Rule(text.strip(), metric, op, value, relative, percent)


def parse_gates(lines: list[str]) -> list[Rule]:
    rules = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].rstrip()
        if text.strip():
            rules.append(_parse_line(text, number))
    return rules


def _find(rule: Rule, rows: list[MetricRow]) -> tuple[MetricRow | None, str]:
    if ":" in rule.metric:
        file, key = rule.metric.split(":", 1)
        found = [r for r in rows if r.key == key and (r.file == file or r.file.endswith("/" + file))]
    else:
        found = [r for r in rows if r.key == rule.metric]
    if not found:
        return None, f"no metric {rule.metric!r}"
    if len(found) > 1:
        files = " and ".join(r.file for r in found)
        return None, f"{rule.metric!r} is in {files}: write file:metric"
    return found[0], ""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _not_finite(value: float | None, what: str) -> str:
    """A broken number (NaN, ±Infinity: a diverged loss, a division by zero) fails its rule, never passes it."""
    if value is None or math.isfinite(value):
        return ""
    shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return f"{what} is {shown}, not a finite number"


def evaluate_gates(rules: list[Rule], rows: list[MetricRow], missing: str) -> GateResults:
    results = []
    for rule in rules:
        row, problem = _find(rule, rows)
        if row is None and "write file:metric" in problem:
            results.append(GateResult(rule, None, None, False, problem))  # ambiguity is never skipped
            continue
        value = _number(row.head) if row else None
        threshold = None
        reason = problem
        if row is not None and value is None:
            reason = "no numeric value" if row.head is not None else "missing at head"
        if rule.relative_to_baseline and row is not None:
            base = _number(row.base)
            if base is None:
                reason = reason or "no baseline value"
            else:
                offset = rule.number or 0.0
                threshold = base + (abs(base) * offset / 100 if rule.percent else offset)
        elif not rule.relative_to_baseline:
            threshold = rule.number
        broken = _not_finite(value, "the value") or _not_finite(threshold, "the baseline threshold")
        if broken:
            results.append(GateResult(rule, value, threshold, False, broken))  # never skipped either
            continue
        if value is None or threshold is None:
            ok = None if missing == "skip" else False
            results.append(GateResult(rule, value, threshold, ok, reason))
            continue
        results.append(GateResult(rule, value, threshold, OPS[rule.op](value, threshold)))
    return GateResults(tuple(results))


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.6g}"


def gates_markdown(results: GateResults) -> str:
    lines = ["| Gate | Value | Threshold | |", "|---|---:|---:|:---:|"]
    for r in results.results:
        mark = "✅" if r.ok else ("⏭️ skipped" if r.ok is None else "❌")
        if r.reason:
            mark += f" {r.reason}"
        lines.append(f"| {code(r.rule.text)} | {_fmt(r.value)} | {r.rule.op} {_fmt(r.threshold)} | {prose(mark)} |")
    return "\n".join(lines)
