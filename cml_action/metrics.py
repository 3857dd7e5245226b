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

# A metrics file is written by a pull request's code: these bound what it can make us do (memory, time, report
# size). Over a limit the file is a one-line input problem; the rest of the report is still built and posted.
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 50_000  # flattened values of one file (also bounds what YAML aliases may expand to)


class TooBig(ValueError):
    """A file beyond one of the limits above."""


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
        try:
            return float(value)
        except OverflowError:
            raise TooBig(f"a {len(str(abs(value)))}-digit integer is beyond any float") from None
    return json.dumps(value, sort_keys=True, default=str)  # dates and other YAML scalars stay readable


def flatten(obj: Any, prefix: str = "") -> dict[str, Value]:
    """Nested mappings become dotted keys; lists of mappings are indexed (`layers.0.units`); any other
    list stays one value, shown as compact JSON, since it is compared as a whole."""
    out: dict[str, Value] = {}
    if prefix.count(".") >= MAX_DEPTH:
        raise TooBig(f"nested deeper than {MAX_DEPTH} levels")
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
    # strict: an unterminated quote is an error, not a value that swallows the rest of the file
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True) if any(c.strip() for c in r)]
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


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes the document becomes once aliases are expanded (what flatten() would walk), counted on the
    composed graph, so a 300-byte alias bomb is measured without being built."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_VALUES + 1  # a cycle (a recursive alias) counts as too big
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1
    memo[key] = min(size, 10 * MAX_VALUES)
    return memo[key]


def safe_yaml(text: str) -> Any:
    """yaml.safe_load, refusing documents whose aliases expand beyond MAX_VALUES nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > 2 * MAX_VALUES + 1:
            raise TooBig(f"YAML aliases expand to more than {MAX_VALUES:,} values")
        return loader.construct_document(node)
    finally:
        loader.dispose()


_LOADERS: dict[str, Callable[[str], Any]] = {
    ".json": json.loads,
    ".yaml": safe_yaml,
    ".yml": safe_yaml,
    ".toml": tomllib.loads,
}


def _text(source: Path | bytes | str, name: str) -> str:
    if isinstance(source, Path):
        try:
            raw = source.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{name}: file not found") from None
        except OSError as exc:
            raise UserError(f"{name}: cannot read: {exc.strerror}") from None
    else:
        raw = source.encode() if isinstance(source, str) else source
    if len(raw) > MAX_BYTES:
        raise UserError(f"{name}: {len(raw) / 1048576:.0f} MiB is beyond the {MAX_BYTES // 1048576} MiB limit for a metrics file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not UTF-8 text") from None


def _parse(text: str, suffix: str) -> dict[str, Value]:
    if suffix in (".csv", ".tsv"):
        return _table(text, "\t" if suffix == ".tsv" else ",")
    data = _LOADERS.get(suffix, safe_yaml)(text)  # YAML is a superset of JSON: a sane default
    return {} if data is None else flatten(data)


def load_values(source: Path | bytes | str, name: str) -> dict[str, Value]:
    """Parse a metrics/params file (JSON, YAML, TOML, CSV, TSV) into flattened values.

    `name` (the workspace-relative path) picks the format and names the file in errors, which are
    UserErrors with one line: "metrics.json: invalid JSON at line 3 column 5: ...".
    """
    text = _text(source, name)
    try:
        values = _parse(text, Path(name).suffix.lower())
    except TooBig as exc:
        raise UserError(f"{name}: {exc}") from None
    except RecursionError:
        raise UserError(f"{name}: nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise UserError(f"{name}: invalid YAML{where}: {problem}") from None
    except (tomllib.TOMLDecodeError, ValueError, csv.Error) as exc:
        raise UserError(f"{name}: cannot parse: {exc}") from None
    if len(values) > MAX_VALUES:
        raise UserError(f"{name}: {len(values):,} values is beyond the limit of {MAX_VALUES:,} for one file")
    return values


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
