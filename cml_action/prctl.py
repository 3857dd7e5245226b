"""Linux's prctl(2), the one system call both the training (undumpable) and the drawing helpers (die with their
parent) need; elsewhere, or without a C library to call it through, it does nothing and says so."""

from __future__ import annotations

import sys

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4


def prctl(option: int, value: int) -> bool:
    """Whether the setting took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
