"""A kubelet for the stand-in: runs a scheduled pod's init containers, then its main container, as local processes.

Each container runs its own command and arguments exactly as the API received them, with its environment. There
is no container runtime here, so a container's filesystem is the host's, with the container's paths translated:
every volume mount (secret volumes filled from the Secret, emptyDirs), the termination message file, and the
paths an image provides (`Image.files`: container path -> host path, e.g. a stub `run.sh` at /home/runner) are
mapped to folders of the pod's sandbox, and an environment value or argument naming such a path is rewritten.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Image:
    files: dict[str, Path] = field(default_factory=dict)  # container path -> host file or folder (copied per pod)


class PodProcess:
    """The running side of one pod: its sandbox and the process of the container running now."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen | None = None
        self.stopped = threading.Event()
        self.log = root / "log.txt"

    def kill(self, grace_s: float = 2.0) -> None:
        self.stopped.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


def _mapping(pod: dict, container: dict, sandbox: Path, images: dict[str, Image]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for mount in container.get("volumeMounts", []):
        pairs.append((mount["mountPath"], str(sandbox / "volumes" / mount["name"])))
    term = container.get("terminationMessagePath", "/dev/termination-log")
    pairs.append((term, str(sandbox / f"termination-{container['name']}")))
    image = images[container["image"]]
    for cpath, host in image.files.items():
        local = sandbox / "image" / container["name"] / cpath.lstrip("/")
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if host.is_dir() else shutil.copy2)(host, local)
        pairs.append((cpath, str(local)))
    return sorted(pairs, key=lambda p: -len(p[0]))


def _rewrite(value: str, pairs: list[tuple[str, str]]) -> str:
    for cpath, host in pairs:
        if value == cpath or value.startswith(cpath.rstrip("/") + "/"):
            return host + value[len(cpath):]
    return value


def prepare_volumes(pod: dict, sandbox: Path, secrets: dict[str, dict]) -> str:
    """Fill the pod's volumes; "" when ready, else the kubelet's reason for waiting (a missing Secret)."""
    for volume in pod["spec"].get("volumes", []):
        folder = sandbox / "volumes" / volume["name"]
        if "secret" in volume:
            secret = secrets.get(volume["secret"]["secretName"])
            if secret is None:
                return f'MountVolume.SetUp failed for volume "{volume["name"]}" : secret "{volume["secret"]["secretName"]}" not found'
            folder.mkdir(parents=True, exist_ok=True)
            mode = volume["secret"].get("defaultMode", 0o644)
            for key, data in (secret.get("data") or {}).items():
                path = folder / key
                path.write_bytes(base64.b64decode(data))
                path.chmod(mode)
        else:
            folder.mkdir(parents=True, exist_ok=True)
    return ""


def run_container(pod: dict, container: dict, state: PodProcess, images: dict[str, Image],
                  on_start: Callable[[], None]) -> tuple[int, str]:
    """Run one container to its end; (exit code, termination message)."""
    pairs = _mapping(pod, container, state.root, images)
    env = {"PATH": os.environ["PATH"], "HOME": str(state.root), "HOSTNAME": pod["metadata"]["name"]}
    for item in container.get("env", []):
        env[item["name"]] = _rewrite(str(item.get("value", "")), pairs)
    argv = [_rewrite(a, pairs) for a in [*container.get("command", []), *container.get("args", [])]]
    cwd = _rewrite(container.get("workingDir", str(state.root)), pairs)
    term_file = Path(_rewrite(container.get("terminationMessagePath", "/dev/termination-log"), pairs))
    with open(state.log, "ab") as log:
        state.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
    on_start()
    code = state.proc.wait()
    message = term_file.read_text(errors="replace").strip() if term_file.exists() else ""
    if not message and code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        message = "\n".join(state.log.read_text(errors="replace").splitlines()[-20:])[-2048:]
    return code, message


def wait_for(condition: Callable[[], Any], stop: threading.Event, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None
