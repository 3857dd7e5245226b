"""Metric and parameter values: load, flatten, compare with the baseline.

Files are read with the same loader at head (from the workspace) and at the baseline (from
`git show`), so a value's key is identical on both sides and the diff is a plain join.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from cml_action.errors import UserError

Value = float | str | bool | None


@dataclass(frozen=True)
class MetricRow:
    """One flattened value with its baseline. Values are float, str, bool, or None when absent."""

    file: str  # workspace-relative path of the file the value came from
    key: str  # flattened key, nested keys joined with dots ("eval.f1"); CSV/TSV: last row's column
    head: float | str | bool | None
    base: float | str | bool | None
    more: tuple[Value, ...] = ()  # values at the further baselines, when `baseline` names several refs
    stale: bool = False  # the head value comes from a file this run did not write (a failed training...)
    unread: tuple[bool, ...] = ()  # per baseline: its file exists there but could not be read

    @property
    def changed(self) -> bool:
        return not same(self.head, self.base)


def same(a: Value, b: Value) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _scalar(value: Any) -> Value:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return json.dumps(value, sort_keys=True, default=str)  # dates and other YAML scalars stay readable


def flatten(obj: Any, prefix: str = "") -> dict[str, Value]:
    """Nested mappings become dotted keys; lists of mappings are indexed (`layers.0.units`); any other
    list stays one value, shown as compact JSON, since it is compared as a whole."""
    out: dict[str, Value] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
                out.update(flatten(value, name))
            else:
                out[name] = _scalar(value)
    elif isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        for i, value in enumerate(obj):
            out.update(flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "value"] = _scalar(obj)
    return out


def _number(text: str) -> Value:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def _table(text: str, delimiter: str) -> dict[str, Value]:
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    if not body:
        raise ValueError("a header row but no values")
    if len(header) == 2 and all(not isinstance(_number(r[0]), float) for r in body if r):
        # two columns, names in the first: a key/value table ("metric,value")
        return {r[0].strip(): _number(r[1]) for r in body if len(r) >= 2}
    last = body[-1]  # a history table (epoch,loss,...): the final row is the result
    return {h.strip(): _number(v) for h, v in zip(header, last)}


_LOADERS: dict[str, Callable[[str], Any]] = {
    ".json": json.loads,
    ".yaml": yaml.safe_load,
    ".yml": yaml.safe_load,
    ".toml": tomllib.loads,
}


def load_values(source: Path | bytes | str, name: str) -> dict[str, Value]:
    """Parse a metrics/params file (JSON, YAML, TOML, CSV, TSV) into flattened values.

    `name` (the workspace-relative path) picks the format and names the file in errors, which are
    UserErrors with one line: "metrics.json: invalid JSON at line 3 column 5: ...".
    """
    if isinstance(source, Path):
        try:
            raw = source.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{name}: file not found") from None
        except OSError as exc:
            raise UserError(f"{name}: cannot read: {exc.strerror}") from None
    else:
        raw = source.encode() if isinstance(source, str) else source
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not UTF-8 text") from None
    suffix = Path(name).suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return _table(text, "\t" if suffix == ".tsv" else ",")
        loader = _LOADERS.get(suffix, yaml.safe_load)  # YAML is a superset of JSON: a sane default
        data = loader(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise UserError(f"{name}: invalid YAML{where}: {problem}") from None
    except (tomllib.TOMLDecodeError, ValueError, csv.Error) as exc:
        raise UserError(f"{name}: cannot parse: {exc}") from None
    if data is None:
        return {}
    return flatten(data)


def rows_for(files: list[str], head: dict[str, dict[str, Value]], base: dict[str, dict[str, Value]]) -> list[MetricRow]:
    """Join head and baseline values per file, keeping the head's key order, then keys only the baseline had."""
    rows: list[MetricRow] = []
    for name in files:
        h, b = head.get(name, {}), base.get(name, {})
        for key in list(h) + [k for k in b if k not in h]:
            rows.append(MetricRow(file=name, key=key, head=h.get(key), base=b.get(key)))
    return rows


def numeric(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
