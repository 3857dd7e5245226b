"""Run the user's training command, streaming its output live and keeping what the report needs.

The training is someone else's code (a pull request's): it gets no token of ours, cannot read ours from
this process (`PR_SET_DUMPABLE` off), cannot command the runner through its output (see
CIContext.untrusted_output), and cannot blow up our memory with one endless line.
"""

from __future__ import annotations

import codecs
import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TextIO

from cml_action import hardware
from cml_action.ci.context import CIContext
from cml_action.gitrefs import trusted_env
from cml_action.prctl import PR_SET_DUMPABLE, prctl

TAIL_LINES = 50
TAIL_LINE_CHARS = 2000  # a longer line is kept cut in the report (the live log has it whole)
READ_CHUNK = 65536

# Our own inputs and the CI's job credentials never reach the training process.
_PRIVATE_PREFIXES = ("INPUT_",)
_PRIVATE_NAMES = frozenset({
    "CML_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN",
    # GitHub: the runtime's own credentials (artifact/cache service, OIDC token minting)
    "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL",
    # GitLab: the job token and everything derived from it
    "CI_JOB_TOKEN", "CI_JOB_JWT", "CI_JOB_JWT_V1", "CI_JOB_JWT_V2", "CI_REGISTRY_PASSWORD", "CI_DEPLOY_PASSWORD",
    "CI_DEPENDENCY_PROXY_PASSWORD", "CI_REPOSITORY_URL",
})
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True)
class TrainResult:
    command: str
    exit_code: int
    duration_s: float
    tail: list[str] = field(default_factory=list)
    hardware: str = ""
    timed_out_after_s: int = 0  # the `timeout` that stopped it, 0 when it ended by itself

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out_after_s


def training_env(env: Mapping[str, str], workspace: Path) -> dict[str, str]:
    clean = {k: v for k, v in env.items() if not k.startswith(_PRIVATE_PREFIXES) and k not in _PRIVATE_NAMES}
    clean.setdefault("PYTHONUNBUFFERED", "1")  # live logs from python train.py
    return trusted_env(workspace, clean)


def make_undumpable() -> bool:
    """Same-user processes may read /proc/<pid>/environ, /mem and /fd of a dumpable process: the training
    would find the token in ours. Non-dumpable, those files need CAP_SYS_PTRACE (which Docker does not
    grant by default). Linux only; returns whether it took effect."""
    return prctl(PR_SET_DUMPABLE, 0)


def title_for(command: str) -> str:
    """The log group's title: the first line of a multi-line `run:` (the rest is printed inside the group)."""
    lines = [line for line in command.strip().splitlines() if line.strip()]
    return lines[0].strip() + (" …" if len(lines) > 1 else "") if lines else command


class _Tail:
    """The last lines of the output, each cut at TAIL_LINE_CHARS, fed with chunks that may split lines."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._current: list[str] = []
        self._length = 0
        self._open = False  # a line has begun (an empty line is a line too)
        self._after_cr = False

    def feed(self, text: str) -> None:
        pieces = text.splitlines(keepends=True)
        if len(pieces) > TAIL_LINES + 1:  # only the last lines can stay: skip the work for the others
            self._current, self._length, self._open = [], 0, False
            pieces = pieces[-(TAIL_LINES + 1):]
        for piece in pieces:
            if piece == "\n" and self._after_cr:  # the second half of a \r\n split between two reads
                self._after_cr = False
                continue
            self._after_cr = piece.endswith("\r")
            ended = piece.endswith(("\n", "\r"))
            piece = piece.rstrip("\r\n")
            self._open = True
            if self._length < TAIL_LINE_CHARS:
                self._current.append(piece[: TAIL_LINE_CHARS - self._length])
            self._length += len(piece)
            if ended:
                self.close()

    def close(self) -> None:
        if not self._open:
            return
        line = _ANSI.sub("", "".join(self._current))
        if self._length > TAIL_LINE_CHARS:
            line += f" … ({self._length - TAIL_LINE_CHARS:,} more characters)"
        self.lines.append(line)
        self._current, self._length, self._open = [], 0, False


def run_training(
    command: str,
    workspace: Path,
    ctx: CIContext,
    env: Mapping[str, str],
    out: TextIO | None = None,
    timeout_s: int = 0,
) -> TrainResult:
    """Run `command` with bash in the workspace. Output is merged, streamed inside a log group with workflow
    commands off, and the last lines are kept for the report. SIGTERM (a cancelled job) is passed on to the
    command; so is `timeout_s`, after which the command is stopped and reported as timed out."""
    stream = out or sys.stdout
    tail = _Tail()
    make_undumpable()
    started = time.monotonic()
    timer: threading.Timer | None = None
    expired = threading.Event()
    with ctx.group(f"Training: {title_for(command)}", out=stream), ctx.untrusted_output(stream) as clean:
        if "\n" in command.strip():
            print(clean(command.strip()), file=stream, flush=True)
        proc = subprocess.Popen(
            ["bash", "-c", command] if os.path.exists("/bin/bash") else command,
            shell=not os.path.exists("/bin/bash"),
            cwd=workspace,
            env=training_env(env, workspace),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if timeout_s > 0:
            timer = threading.Timer(timeout_s, lambda: (expired.set(), _terminate(proc)))
            timer.daemon = True
            timer.start()
        previous = _forward_sigterm(proc)
        try:
            _pump(proc, stream, tail, clean)
            code = proc.wait()
        except KeyboardInterrupt:
            _terminate(proc)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    duration = time.monotonic() - started
    if expired.is_set():
        print(f"cml-action: training stopped: it ran past the time limit ({timeout_s}s)", file=sys.stderr)
    return TrainResult(command=command, exit_code=code, duration_s=duration, tail=list(tail.lines),
                       hardware=hardware.describe(), timed_out_after_s=timeout_s if expired.is_set() else 0)


def _pump(proc: subprocess.Popen, stream: TextIO, tail: _Tail, clean: Callable[[str], str]) -> None:
    """Copy output to the log as it comes, in whole lines (so a secret or a command is seen whole by `clean`)
    and in bounded blocks (a 100 MB line never sits in memory whole; a chatty log costs few calls)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        raw = os.read(fd, READ_CHUNK)
        text = pending + decoder.decode(raw, final=not raw)
        end = max(text.rfind("\n"), text.rfind("\r")) + 1
        if raw and not end and len(text) < READ_CHUNK:
            pending = text  # an unfinished line: wait for its end
            continue
        block, pending = (text[:end], text[end:]) if raw and end else (text, "")
        if block:
            tail.feed(block)
            stream.write(clean(block))
            stream.flush()
        if not raw:
            break
    tail.close()


def _terminate(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _forward_sigterm(proc: subprocess.Popen):
    """A cancelled CI job sends SIGTERM to us; the training process group must stop too."""
    try:
        def handler(signum, frame):  # noqa: ARG001
            _terminate(proc)
            raise KeyboardInterrupt

        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests running us in a thread)
        return None
