"""Backoff shared by every client: one base delay, doubled each attempt. Tests shorten it with CML_RETRY_BACKOFF."""

from __future__ import annotations

import os
import time


def backoff_base() -> float:
    try:
        return float(os.environ.get("CML_RETRY_BACKOFF", "1"))
    except ValueError:
        return 1.0


def pause(attempt: int) -> None:
    """Sleep before attempt `attempt + 1`: base, 2x base, 4x base..."""
    time.sleep(backoff_base() * 2**attempt)
