"""A report is an ordered list of sections; shortening works on sections, never on raw text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """One block of the report.

    `priority` orders what survives shortening: 0 is never touched (title, summary, gates), higher numbers
    are collapsed, then cut, first. `collapsible` sections are wrapped in <details> (open=False).
    """

    title: str
    body: str
    priority: int = 1
    collapsible: bool = False
    open: bool = True
