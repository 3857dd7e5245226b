"""SIGTERM (a cancelled job) unwinds like Ctrl-C, so `finally` blocks remove what was created; and while removing,
further signals wait, since an interrupted cleanup would leak exactly what it was deleting."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM."""


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_ignored() -> Iterator[None]:
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
