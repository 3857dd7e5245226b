"""Reading plot data: CSV, TSV and JSON (records, DVC's {"name": [records]}, or columns) into a small table.

A plot needs a few columns as numbers or as labels, nothing more: reading them with the csv and json modules
into numpy arrays avoids importing pandas, which alone costs more than drawing several plots.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from cml_action.errors import UserError

BIG = 4_000_000  # bytes of CSV from which pandas reads faster than the csv module, its import included


class Table:
    """Named columns of equal length; each cell a float (NaN when empty), a bool or a string."""

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self.data = columns
        self.columns = list(columns)
        self._numeric: dict[str, bool] = {}  # asked again and again while a kind is chosen and drawn

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def numeric(self, name: str) -> bool:
        if name not in self._numeric:
            values = self.data[name]
            if hasattr(values, "dtype"):  # a big file, read by pandas into numpy
                self._numeric[name] = values.dtype.kind in "fiu" and len(values) > 0
            else:
                self._numeric[name] = bool(values) and all(isinstance(v, float) for v in values)
        return self._numeric[name]

    def floats(self, name: str) -> Any:
        import numpy as np

        values = self.data[name]
        if hasattr(values, "dtype") and values.dtype.kind in "fiu":
            return values.astype(float)
        return np.asarray([v if isinstance(v, float) else math.nan for v in values], dtype=float)

    def labels(self, name: str) -> list[str]:
        return [_label(v) for v in self.data[name]]


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(value: Any) -> Any:
    """JSON values as they are (numbers as floats); CSV text as a number when it reads as one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if value is None:
        return math.nan
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return math.nan
        try:
            return float(text)
        except ValueError:
            return value
    return json.dumps(value, sort_keys=True)


def _from_csv(text: str, sep: str) -> dict[str, list[Any]]:
    rows = list(csv.reader(io.StringIO(text), delimiter=sep, strict=True))  # an unterminated quote is an error
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError("no columns to parse")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    return {name: [_cell(r[i]) if i < len(r) else math.nan for r in body] for i, name in enumerate(header)}


def _records(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and all(isinstance(row, dict) for row in data)


def _columns(data: Any) -> bool:
    return isinstance(data, dict) and bool(data) and all(isinstance(v, list) for v in data.values())


def _from_json(data: Any, rel: str) -> dict[str, list[Any]]:
    if isinstance(data, dict) and len(data) == 1 and _records(next(iter(data.values()))):
        data = next(iter(data.values()))  # DVC's plot format: {"train": [{...}, ...]}
    if _records(data):
        names = list(dict.fromkeys(k for row in data for k in row))
        return {str(name): [_cell(row.get(name)) for row in data] for name in names}
    if _columns(data):
        if len({len(v) for v in data.values()}) > 1:
            raise UserError(f"{rel}: JSON columns of different lengths")
        return {str(k): [_cell(v) for v in values] for k, values in data.items()}
    raise UserError(f"{rel}: JSON plots need a list of records or a mapping of columns")


def _big_csv(path: Path, sep: str, columns: list[str] | None) -> dict[str, Any]:
    """pandas' C reader: for a file this size it saves more than its import costs."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=sep, usecols=columns) if columns else pd.read_csv(path, sep=sep)
    except ValueError as exc:
        if columns and "Usecols" in str(exc):
            return {}  # the caller names the missing columns
        raise
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _read(path: Path, rel: str, columns: list[str] | None) -> dict[str, Any]:
    suffix = path.suffix.lower()
    sep = "\t" if suffix == ".tsv" else ","
    if suffix in (".csv", ".tsv", ".txt"):
        if path.stat().st_size > BIG:
            return _big_csv(path, sep, columns)
        return _from_csv(path.read_text(encoding="utf-8-sig"), sep)
    if suffix == ".json":
        return _from_json(json.loads(path.read_text(encoding="utf-8-sig")), rel)
    raise UserError(f"{rel}: cannot plot {suffix or 'extension-less'} files (CSV, TSV, JSON or an image)")


def load_table(path: Path, rel: str, columns: list[str] | None = None) -> Table:
    """A non-empty table; `columns` (when given) must all be there, and only they are kept."""
    try:
        data = _read(path, rel, columns)
    except UserError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, csv.Error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{rel}: cannot read as a table: {first}") from None
    if columns:
        missing = [c for c in columns if c not in data]
        if missing:
            raise UserError(f"{rel}: columns {', '.join(columns)} not all found (missing: {', '.join(missing)})")
        data = {c: data[c] for c in columns}
    table = Table(data)
    if len(table) == 0 or not table.columns:
        raise UserError(f"{rel}: no rows to plot")
    return table
