"""Training in the user's own image (`train-image`), through the Docker Engine API, while the report stays here.

The engine is the host's (GitHub mounts its socket into container actions; on a self-hosted GPU runner it is the
machine's own). Paths are the engine's, so when cml-action itself runs in a container the workspace is mounted
from where the engine sees it, at the same path as here, and every path in the user's command stays valid.
Only the environment variables named in `train-env` go in: never the forge token or cloud keys by accident.
The container is removed whatever happens: success, failure, Ctrl-C or a cancelled job (SIGTERM).
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TextIO

from cml_action.errors import UserError
from cml_action.signals import signals_ignored, sigterm_unwinds

TAIL = 50


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    duration_s: float
    tail: tuple[str, ...]


def has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def _client(env: Mapping[str, str]) -> Any:
    import docker
    from docker.errors import DockerException

    base_url = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=base_url, version="auto", timeout=120)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0][:200]
        raise UserError(f"train-image needs a Docker engine ({base_url}): {reason}") from None
    return client


def _engine_path(client: Any, workspace: Path, env: Mapping[str, str]) -> str:
    """Where the engine finds our workspace: our own container's mount source, else the path itself."""
    from docker.errors import DockerException

    me = env.get("HOSTNAME", "")
    if (me and Path("/.dockerenv").exists()) or env.get("CML_CONTAINER_ID"):
        try:
            info = client.api.inspect_container(env.get("CML_CONTAINER_ID") or me)
        except DockerException:
            return str(workspace)
        for mount in info.get("Mounts", []):
            dest = Path(mount.get("Destination", ""))
            if dest == workspace or dest in workspace.parents:
                return str(Path(mount["Source"]) / workspace.relative_to(dest))
    return str(workspace)


def _ensure_image(client: Any, image: str, out: TextIO) -> None:
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    print(f"cml-action: pulling {image}", file=out, flush=True)
    try:
        client.images.pull(repo or image, tag=tag or "latest")
    except APIError as exc:
        raise UserError(f"train-image {image}: cannot pull it: {exc.explanation or exc}") from None


def run_in_image(image: str, command: str, workspace: Path, env_names: list[str], env: Mapping[str, str],
                 out: TextIO) -> Outcome:
    from docker.errors import APIError
    from docker.types import DeviceRequest

    client = _client(env)
    _ensure_image(client, image, out)
    environment = {name: env[name] for name in env_names if name in env}
    environment.setdefault("PYTHONUNBUFFERED", "1")
    source = _engine_path(client, workspace, env)
    kwargs: dict[str, Any] = {
        "command": ["/bin/sh", "-c", command], "working_dir": str(workspace), "environment": environment,
        "volumes": {source: {"bind": str(workspace), "mode": "rw"}}, "labels": {"cml-action": "train"},
        "detach": True, "tty": False,
    }
    if has_gpu():
        kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    try:
        container = client.containers.create(image, **kwargs)
    except APIError as exc:
        raise UserError(f"train-image {image}: the engine refused the container: {exc.explanation or exc}") from None
    tail: deque[str] = deque(maxlen=TAIL)
    started = time.monotonic()
    try:
        with sigterm_unwinds():
            container.start()
            _stream(container, out, tail)
            code = int(container.wait().get("StatusCode", 1))
    finally:
        with signals_ignored():  # removal must finish, even when the job is being cancelled
            try:
                container.remove(force=True)
            except APIError:
                pass
    return Outcome(code, time.monotonic() - started, tuple(tail))


def _stream(container: Any, out: TextIO, tail: deque[str]) -> None:
    """Live log lines to `out`, the last ones kept for the report."""
    pending = ""
    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
        pending += chunk.decode("utf-8", errors="replace")
        *lines, pending = pending.split("\n")
        for line in lines:
            print(line, file=out, flush=True)
            tail.append(line)
    if pending:
        print(pending, file=out, flush=True)
        tail.append(pending)
