"""The drawing process: the drawing stack imported early, in a process of its own, and plots drawn side by side.

Nothing can be drawn before numpy and Pillow are imported (about 0.15 s), so this module imports nothing heavy
itself: the CLI forks the drawing process first thing for `report` (before the pipeline and its sources are
even imported), the pipeline after training for `run`. While the report process reads values and plot data,
the drawing process imports what drawing needs. When a batch of plots arrives, it forks a helper per further
core (copy-on-write: each starts with everything imported) and draws with them, each taking the next plot from
a shared pipe of tickets, largest plots first; the helpers exit with the batch.

Without fork (or with workers 0), or when the process has died, plots are drawn in the calling process.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

from cml_action.prctl import PR_SET_PDEATHSIG, prctl

MAX_WORKERS = 4
ROUND = 4096  # plots per round of helpers: 4 bytes of ticket each, 16 KiB, what any pipe holds unread


def _die_with(parent: int) -> None:
    """Be killed when `parent` goes (Linux), so that killing the drawing process (see `Painter.close`) leaves
    nothing behind."""
    import signal

    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)  # gone before the signal was asked for


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj)
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other end is gone")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    return pickle.loads(_read_exactly(fd, int.from_bytes(_read_exactly(fd, 8), "little")))


def _take(jobs: list[Any], tickets: int, out_dir: Path) -> list[tuple[int, object]]:
    """Draw the job of each ticket read until none is left: (index, result) for each. Every drawer reads the
    same pipe, 4 bytes a ticket; a pipe hands each read its bytes whole, so no ticket is drawn twice."""
    from cml_action.plots.render import draw_job_away

    done = []
    while True:
        ticket = os.read(tickets, 4)
        if len(ticket) < 4:
            return done
        index = int.from_bytes(ticket, "little")
        done.append((index, draw_job_away(jobs[index], out_dir)))


def _fork_helper(jobs: list[Any], tickets: int, out_dir: Path, parent: int) -> tuple[int, int]:
    """A drawer forked from this one: (its pid, the pipe its results come back on)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _die_with(parent)
            _send(write_end, _take(jobs, tickets, out_dir))
        finally:
            os._exit(0)  # never the interpreter's slow orderly exit, nor a return into the caller
    os.close(write_end)
    return pid, read_end


def _draw_all(jobs: list[Any], out_dir: Path, drawers: int) -> list[object]:
    """In the drawing process, `ROUND` jobs at a time: their tickets are written before any helper starts,
    so the pipe must hold them all."""
    answers: list[object] = []
    for start in range(0, len(jobs), ROUND):
        answers += _draw_round(jobs[start:start + ROUND], out_dir, drawers)
    return answers


def _draw_round(jobs: list[Any], out_dir: Path, drawers: int) -> list[object]:
    """With up to `drawers - 1` forked helpers, the largest jobs first (the last to finish is then a small
    one). Results travel back without their recorded points (pickling them would be waste); a job a helper
    did not answer (it died) is drawn here."""
    from cml_action.plots.render import draw_job_away

    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].cost())
    tickets, write_tickets = os.pipe()
    os.write(write_tickets, b"".join(i.to_bytes(4, "little") for i in order))  # fits: ROUND * 4 bytes
    os.close(write_tickets)  # so that a drawer reading an empty pipe sees its end
    helpers = [_fork_helper(jobs, tickets, out_dir, os.getpid()) for _ in range(min(drawers, len(jobs)) - 1)]
    answers: dict[int, object] = dict(_take(jobs, tickets, out_dir))
    os.close(tickets)
    for pid, results in helpers:
        try:
            answers.update(_receive(results))
        except (EOFError, pickle.UnpicklingError):
            pass
        os.close(results)
        os.waitpid(pid, 0)  # reaped: its CPU time counts in ours
    return [answers[i] if i in answers else draw_job_away(job, out_dir) for i, job in enumerate(jobs)]


def _zygote(requests: int, answers: int, drawers: int, parent: int) -> None:
    """Any failure here (Pillow missing, say) ends this process quietly: the report process then sees the
    pipe close and draws in itself, where an error is reported properly."""
    try:
        _die_with(parent)
        import gc

        from cml_action.plots.render import warm_up

        warm_up()
        gc.freeze()  # what is imported now lives until the end: the collector need not walk (and copy) it
        while True:
            message = _receive(requests)
            if message is None:
                break
            jobs, out_dir = message
            _send(answers, _draw_all(jobs, out_dir, drawers))
    except BaseException:  # noqa: BLE001 - see the docstring; EOFError: the report process is gone
        pass
    finally:
        os._exit(0)  # an orderly interpreter exit takes longer than a plot


class Painter:
    """Draws plot jobs (plots.render.DrawJob) in the drawing process, with `workers` processes in all.

    A bare fork and two pipes: `multiprocessing` alone takes longer to import than forking does."""

    def __init__(self, workers: int) -> None:
        self._pid = 0
        self._requests = self._answers = -1
        self.used = False
        if workers >= 1 and hasattr(os, "fork"):
            requests, self._requests = os.pipe()
            self._answers, answers = os.pipe()
            parent = os.getpid()
            try:
                pid = os.fork()
            except OSError:  # no process to spare: draw here
                for fd in (requests, self._requests, self._answers, answers):
                    os.close(fd)
                return
            if pid == 0:
                os.close(self._requests)
                os.close(self._answers)
                _zygote(requests, answers, workers, parent)  # never returns
            os.close(requests)
            os.close(answers)
            self._pid = pid

    @property
    def running(self) -> bool:
        return self._pid != 0

    def draw(self, jobs: list[Any], out_dir: Path) -> list[object]:
        """Each job's (RenderedPlot, stale) or its one-line problem, in order."""
        self.used = self.used or bool(jobs)
        if self._pid and jobs:
            try:
                _send(self._requests, (jobs, out_dir))
                return _receive(self._answers)
            except (EOFError, OSError, pickle.UnpicklingError):
                self.close()
        from cml_action.plots.render import draw_job

        return [draw_job(job, out_dir) for job in jobs]

    def close(self) -> None:
        """Idempotent. A drawing process that never drew is killed: it may still be importing."""
        if not self._pid:
            return
        pid, self._pid = self._pid, 0
        if not self.used:
            _kill(pid)  # a helper it may have forked follows it (_die_with)
        else:
            try:
                _send(self._requests, None)
            except OSError:
                _kill(pid)
        os.close(self._requests)
        os.close(self._answers)
        _reap(pid)

    def __enter__(self) -> Painter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int, timeout_s: float = 30.0) -> None:
    """Wait for the drawing process (its CPU time then counts in ours); killed if it does not end in time."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() > deadline:
            _kill(pid)
            os.waitpid(pid, 0)
            return
        time.sleep(0.002)


def worker_count() -> int:
    """A drawing process per core, up to MAX_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(MAX_WORKERS, cores)


def may_draw(args: argparse.Namespace) -> bool:
    """Whether a `report` can have plots to draw, decided before the sources are imported: plots named, or a
    dvc.yaml whose declarations are the content. A painter started for a report that then draws nothing is
    killed by `close`, so a wrong yes costs some idle CPU, never time."""
    if getattr(args, "plots", None):
        return True
    named = getattr(args, "metrics", None) or getattr(args, "params", None)
    return not named and (Path(getattr(args, "workdir", ".")) / "dvc.yaml").is_file()


def early(args: argparse.Namespace) -> Painter | None:
    """The painter the CLI starts before importing the pipeline: only for `report` (`run` trains first, and
    the training must not find a process of ours it can inspect; the pipeline starts one after it)."""
    if args.command != "report" or not may_draw(args):
        return None
    return Painter(worker_count())
