"""Metric and parameter values: load, flatten, compare with the baseline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricRow:
    """One flattened value with its baseline. Values are float, str, bool, or None when absent."""

    file: str  # workspace-relative path of the file the value came from
    key: str  # flattened key, nested keys joined with dots ("eval.f1"); CSV/TSV: last row's column
    head: float | str | bool | None
    base: float | str | bool | None
