"""Reading plot data: CSV, TSV and JSON (records, DVC's {"name": [records]}, or columns) into a DataFrame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cml_action.errors import UserError


def load_table(path: Path, rel: str, columns: list[str] | None = None) -> Any:
    """A non-empty DataFrame; `columns` (when all known) lets pandas skip the rest of a wide file."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            try:
                frame = pd.read_csv(path, sep=sep, usecols=columns) if columns else pd.read_csv(path, sep=sep)
            except ValueError as exc:
                if columns and "Usecols" in str(exc):
                    missing = ", ".join(columns)
                    raise UserError(f"{rel}: columns {missing} not all found") from None
                raise
        elif suffix == ".json":
            frame = _from_json(json.loads(path.read_text(encoding="utf-8")), rel)
        else:
            raise UserError(f"{rel}: cannot plot {suffix or 'extension-less'} files (CSV, TSV, JSON or an image)")
    except UserError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{rel}: cannot read as a table: {first}") from None
    if frame.empty or len(frame.columns) == 0:
        raise UserError(f"{rel}: no rows to plot")
    return frame


def _from_json(data: Any, rel: str) -> Any:
    import pandas as pd

    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), list):
        data = next(iter(data.values()))  # DVC's plot format: {"train": [{...}, ...]}
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        return pd.DataFrame.from_records(data)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        return pd.DataFrame(data)
    raise UserError(f"{rel}: JSON plots need a list of records or a mapping of columns")
