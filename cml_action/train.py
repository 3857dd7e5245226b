"""Run the user's training command, streaming its output live and keeping what the report needs."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, TextIO

from cml_action import hardware
from cml_action.ci.context import CIContext
from cml_action.gitrefs import trusted_env

TAIL_LINES = 50

# Our own inputs never reach the training process: the token above all.
_PRIVATE_PREFIXES = ("INPUT_",)
_PRIVATE_NAMES = ("CML_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN")


@dataclass(frozen=True)
class TrainResult:
    command: str
    exit_code: int
    duration_s: float
    tail: list[str] = field(default_factory=list)
    hardware: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def training_env(env: Mapping[str, str], workspace: Path) -> dict[str, str]:
    clean = {k: v for k, v in env.items() if not k.startswith(_PRIVATE_PREFIXES) and k not in _PRIVATE_NAMES}
    clean.setdefault("PYTHONUNBUFFERED", "1")  # live logs from python train.py
    return trusted_env(workspace, clean)


def run_training(
    command: str,
    workspace: Path,
    ctx: CIContext,
    env: Mapping[str, str],
    out: TextIO | None = None,
) -> TrainResult:
    """Run `command` with bash in the workspace. Output is merged, streamed line by line inside a log group,
    and the last lines are kept for the report. SIGTERM (a cancelled job) is passed on to the command."""
    stream = out or sys.stdout
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    with ctx.group(f"Training: {command}", out=stream):
        proc = subprocess.Popen(
            ["bash", "-c", command] if os.path.exists("/bin/bash") else command,
            shell=not os.path.exists("/bin/bash"),
            cwd=workspace,
            env=training_env(env, workspace),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        previous = _forward_sigterm(proc)
        try:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                tail.append(line)
                print(line, file=stream, flush=True)
            code = proc.wait()
        except KeyboardInterrupt:
            _terminate(proc)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    duration = time.monotonic() - started
    return TrainResult(command=command, exit_code=code, duration_s=duration, tail=list(tail), hardware=hardware.describe())


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
