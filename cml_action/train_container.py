"""Training in the user's own image (`train-image`), through the Docker Engine API, while the report stays here.

The engine is the host's (GitHub mounts its socket into container actions; on a self-hosted GPU runner it is the
machine's own). Paths are the engine's, so when cml-action itself runs in a container the workspace is mounted
from where the engine sees it, at the same path as here, and every path in the user's command stays valid.
Only the environment variables named in `train-env` go in: never the forge token or cloud keys by accident.
The container is removed whatever happens: success, failure, Ctrl-C or a cancelled job (SIGTERM).

GPUs: whether the engine's host has them is the engine's knowledge, not ours (we may run in a container that has no
nvidia-smi and no /dev/nvidia*, as a GitHub container action always does). Docker can give GPUs when the NVIDIA
container toolkit's hook or CDI is installed, whether or not an `nvidia` runtime shows in `/info`, so the container
asks for every GPU (a device request) and the engine decides; when it refuses at start (no GPU driver: "could not
select device driver"), the container is made again without the request and the report says the run was on the CPU.
"""

from __future__ import annotations

import re
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
    hardware: str = ""


# What dockerd (devices.go: "could not select device driver") and the NVIDIA hook or CDI say when no GPU can be given.
_NO_GPU = re.compile(r"device driver|capabilities: \[\[gpu\]\]|nvidia|cdi|gpu", re.I)


def _gpu_refused(exc: Exception) -> bool:
    return bool(_NO_GPU.search(str(getattr(exc, "explanation", "") or exc)))


def _host(client: Any) -> str:
    """The engine host's size as the engine reports it (`/info`), which is where the training runs."""
    from docker.errors import DockerException

    try:
        info = client.info()
    except DockerException:
        return "Docker host"
    cpus, memory = info.get("NCPU"), info.get("MemTotal")
    bits = [f"{cpus} CPUs" if cpus else "", f"{memory / 2**30:.0f} GiB" if memory else ""]
    return "Docker host: " + ", ".join(b for b in bits if b) if any(bits) else "Docker host"


_REFERENCE = re.compile(r"[\w][\w.:/@+-]{0,254}")  # what an image reference may hold: nothing markdown would act on


def describe(client: Any, image: str, gpus: bool) -> str:
    """The report's hardware line for a run in the user's image: the engine's host, and whether it gave the GPUs."""
    where = "GPU: every GPU of the host (device request granted)" if gpus else "CPU only (the engine gives no GPU)"
    shown = image if _REFERENCE.fullmatch(image) else "the given image"
    return f"{_host(client)}, {where}, in {shown}"


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


def _create(client: Any, image: str, kwargs: dict[str, Any]) -> Any:
    from docker.errors import APIError

    try:
        return client.containers.create(image, **kwargs)
    except APIError as exc:
        raise UserError(f"train-image {image}: the engine refused the container: {exc.explanation or exc}") from None


def _remove(container: Any) -> None:
    from docker.errors import APIError

    with signals_ignored():  # removal must finish, even when the job is being cancelled
        try:
            container.remove(force=True)
        except APIError:
            pass


def _start_with_gpus(client: Any, image: str, kwargs: dict[str, Any], out: TextIO,
                     made: list[Any]) -> tuple[Any, bool]:
    """A started container, with every GPU when the engine can give them; (container, whether it has GPUs).
    Every container made is appended to `made` at once, so a SIGTERM at any point still finds it to remove."""
    from docker.errors import APIError
    from docker.types import DeviceRequest

    container = _create(client, image, {**kwargs, "device_requests": [DeviceRequest(count=-1, capabilities=[["gpu"]])]})
    made.append(container)
    try:
        container.start()
        return container, True
    except APIError as exc:
        _remove(container)
        if not _gpu_refused(exc):
            raise UserError(f"train-image {image}: the engine could not start it: {exc.explanation or exc}") from None
        reason = str(exc.explanation or exc).splitlines()[0][:200]
        print(f"cml-action: the Docker engine gives no GPU ({reason}): training on the CPU", file=out, flush=True)
    container = _create(client, image, kwargs)
    made.append(container)
    try:
        container.start()
    except APIError as exc:
        _remove(container)
        raise UserError(f"train-image {image}: the engine could not start it: {exc.explanation or exc}") from None
    return container, False


def run_in_image(image: str, command: str, workspace: Path, env_names: list[str], env: Mapping[str, str],
                 out: TextIO) -> Outcome:
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
    tail: deque[str] = deque(maxlen=TAIL)
    started = time.monotonic()
    made: list[Any] = []
    try:
        with sigterm_unwinds():
            container, gpus = _start_with_gpus(client, image, kwargs, out, made)
            _stream(container, out, tail)
            code = int(container.wait().get("StatusCode", 1))
    finally:
        for each in made:
            _remove(each)
    return Outcome(code, time.monotonic() - started, tuple(tail), describe(client, image, gpus))


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
