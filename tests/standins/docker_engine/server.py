"""The Docker Engine API endpoints cml-action uses (ping, version, info, images, containers create/start/logs/wait/
kill/delete, inspect), with request shapes checked against the Engine API's published definitions
(ContainerConfig, HostConfig, DeviceRequest in moby's api/swagger.yaml; facts restated here).

GPUs as dockerd gives them: a container with a DeviceRequest is created either way (the request is only stored);
at start, dockerd builds the OCI spec and, when no device driver matches (no NVIDIA hook or CDI on the host), answers
400 "could not select device driver \"\" with capabilities: [[gpu]]" (moby daemon/devices.go, an InvalidParameter
error). `gpu_host` chooses which host this engine runs on; `/info` then lists the nvidia runtime as a toolkit
installed with `nvidia-ctk runtime configure` would.

The stand-in does not run anything: a test scripts what the container prints and its exit code. Logs are
streamed live in the engine's multiplexed framing (8-byte header: stream, 0, 0, 0, size big-endian).
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterator

from standins.server import Request, Response, SpecViolation, StandIn

API_VERSION = "1.47"
CONTAINER_CONFIG = {"Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
                    "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
                    "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
                    "StopTimeout", "Shell", "HostConfig", "NetworkingConfig"}
HOST_CONFIG = {"Binds", "Mounts", "DeviceRequests", "AutoRemove", "NetworkMode", "Privileged", "Runtime", "ShmSize",
               "Ulimits", "IpcMode", "PidMode", "CapAdd", "CapDrop", "SecurityOpt", "LogConfig", "RestartPolicy",
               "Devices", "GroupAdd", "Init", "ReadonlyRootfs", "Memory", "NanoCpus", "CpuShares", "PortBindings",
               "PublishAllPorts", "ExtraHosts", "VolumesFrom", "Tmpfs", "UsernsMode", "Sysctls", "StorageOpt"}
DEVICE_REQUEST = {"Driver", "Count", "DeviceIDs", "Capabilities", "Options"}


@dataclass
class Script:
    lines: list[str] = field(default_factory=lambda: ["training...", "done"])
    exit_code: int = 0
    delay: float = 0.0  # seconds between lines


@dataclass
class Container:
    id: str
    config: dict
    state: str = "created"
    exit_code: int | None = None


class DockerEngineStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.images = {"python:3.11-slim"}
        self.pulled: list[str] = []
        self.containers: dict[str, Container] = {}
        self.removed: list[str] = []
        self.script = Script()
        self.self_mounts: list[dict] = []  # mounts of the container cml-action itself runs in
        self.gpu_host = False  # whether the engine can give GPUs (NVIDIA driver and container toolkit installed)
        self.started: list[dict] = []  # the HostConfig of every container that started
        self._ids = itertools.count(1)
        v = r"(?:/v1\.\d+)?"
        self.route("GET", v + r"/_ping", lambda r: Response(200, "OK", {"Api-Version": API_VERSION}))
        self.route("HEAD", v + r"/_ping", lambda r: Response(200, "", {"Api-Version": API_VERSION}))
        self.route("GET", v + r"/version", lambda r: {"ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                                                      "Version": "28.2.2", "Os": "linux", "Arch": "amd64"})
        self.route("GET", v + r"/info", self._info)
        self.route("GET", v + r"/images/(?P<name>.+)/json", self._image)
        self.route("POST", v + r"/images/create", self._pull)
        self.route("POST", v + r"/containers/create", self._create)
        self.route("GET", v + r"/containers/(?P<cid>[^/]+)/json", self._inspect)
        self.route("POST", v + r"/containers/(?P<cid>[^/]+)/start", self._start)
        self.route("GET", v + r"/containers/(?P<cid>[^/]+)/logs", self._logs)
        self.route("POST", v + r"/containers/(?P<cid>[^/]+)/wait", self._wait)
        self.route("POST", v + r"/containers/(?P<cid>[^/]+)/kill", self._kill)
        self.route("POST", v + r"/containers/(?P<cid>[^/]+)/stop", self._kill)
        self.route("DELETE", v + r"/containers/(?P<cid>[^/]+)", self._delete)

    def serve_unix(self, path: Path) -> Path:
        """Also listen on a unix socket, as dockerd does on /var/run/docker.sock: each connection is relayed to the
        stand-in's loopback port, so a client inside a chroot with the socket bind-mounted reaches the same engine."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(16)
        port = int(self.url.rsplit(":", 1)[1])

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def accept() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", port))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        self._unix = listener
        return path

    def stop(self) -> None:
        if getattr(self, "_unix", None) is not None:
            self._unix.close()
        super().stop()

    def _info(self, request: Request) -> Any:
        runtimes = {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"}}
        if self.gpu_host:
            runtimes["nvidia"] = {"path": "nvidia-container-runtime"}
        return {"ID": "standin", "NCPU": 8, "MemTotal": 32 * 2**30, "OperatingSystem": "Ubuntu 24.04 LTS",
                "ServerVersion": "28.2.2", "Runtimes": runtimes, "DefaultRuntime": "runc"}

    def _image(self, request: Request, name: str) -> Any:
        if name not in self.images and f"{name}:latest" not in self.images:
            return Response(404, {"message": f"No such image: {name}"})
        return {"Id": "sha256:" + "0" * 64, "RepoTags": [name]}

    def _pull(self, request: Request) -> Any:
        image = request.arg("fromImage", "") or ""
        tag = request.arg("tag") or "latest"
        if not image:
            raise SpecViolation("images/create needs fromImage")
        self.images.add(f"{image}:{tag}")
        self.images.add(image if tag == "latest" else f"{image}:{tag}")
        self.pulled.append(f"{image}:{tag}")
        lines = [{"status": f"Pulling from {image}", "id": tag}, {"status": "Download complete"},
                 {"status": f"Status: Downloaded newer image for {image}:{tag}"}]
        return Response(200, "\n".join(json.dumps(x) for x in lines).encode(), {"Content-Type": "application/json"})

    def _create(self, request: Request) -> Any:
        body = request.json()
        for key in body:
            if key not in CONTAINER_CONFIG:
                raise SpecViolation(f"containers/create: unknown ContainerConfig field {key!r}")
        for key in body.get("HostConfig") or {}:
            if key not in HOST_CONFIG:
                raise SpecViolation(f"containers/create: unknown HostConfig field {key!r}")
        for req in (body.get("HostConfig") or {}).get("DeviceRequests") or []:
            if set(req) - DEVICE_REQUEST:
                raise SpecViolation(f"DeviceRequest fields {sorted(set(req) - DEVICE_REQUEST)} are not in the Engine API")
            if req.get("Count") and req.get("DeviceIDs"):
                raise SpecViolation("cannot set both Count and DeviceIDs on device request")
            if not isinstance(req.get("Capabilities"), list) or not all(isinstance(c, list) for c in req["Capabilities"]):
                raise SpecViolation("DeviceRequest.Capabilities is a list of lists of strings")
        if not isinstance(body.get("Cmd"), list) or not body.get("Image"):
            raise SpecViolation("containers/create needs Image and Cmd as a list")
        if body["Image"] not in self.images and f"{body['Image']}:latest" not in self.images:
            return Response(404, {"message": f"No such image: {body['Image']}"})
        cid = f"{next(self._ids):064x}"
        self.containers[cid] = Container(cid, body)
        return Response(201, {"Id": cid, "Warnings": []})

    def _container(self, cid: str) -> Container | None:
        return next((c for c in self.containers.values() if c.id.startswith(cid)), None)

    def _inspect(self, request: Request, cid: str) -> Any:
        container = self._container(cid)
        if container is None:
            if self.self_mounts and cid:
                return {"Id": cid, "Mounts": self.self_mounts, "Config": {}, "State": {"Status": "running"}}
            return Response(404, {"message": f"No such container: {cid}"})
        return {"Id": container.id, "Config": container.config, "State": {"Status": container.state},
                "HostConfig": container.config.get("HostConfig", {}), "Mounts": []}

    def _start(self, request: Request, cid: str) -> Any:
        container = self._container(cid)
        if container is None:
            return Response(404, {"message": "No such container"})
        requests = (container.config.get("HostConfig") or {}).get("DeviceRequests") or []
        if requests and not self.gpu_host:
            req = requests[0]
            caps = "[" + " ".join("[" + " ".join(c) + "]" for c in req.get("Capabilities") or []) + "]"
            return Response(400, {"message": f"could not select device driver \"{req.get('Driver', '')}\" "
                                             f"with capabilities: {caps}"})
        container.state = "running"
        self.started.append(container.config.get("HostConfig") or {})
        return Response(204)

    def _logs(self, request: Request, cid: str) -> Any:
        container = self._container(cid)
        if container is None:
            return Response(404, {"message": "No such container"})
        script = self.script

        def frames() -> Iterator[bytes]:
            for i, line in enumerate(script.lines):
                if script.delay:
                    time.sleep(script.delay)
                if container.state != "running":
                    return
                data = (line + "\n").encode()
                yield struct.pack(">BxxxL", 2 if line.startswith("ERR:") else 1, len(data)) + data
            container.exit_code = script.exit_code
            container.state = "exited"

        return Response(200, headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}, stream=frames())

    def _wait(self, request: Request, cid: str) -> Any:
        container = self._container(cid)
        if container is None:
            return Response(404, {"message": "No such container"})

        def until_exit() -> Iterator[bytes]:  # streamed, so other requests (kill, delete) are served meanwhile
            while container.state == "running":
                time.sleep(0.02)
            code = container.exit_code if container.exit_code is not None else 137
            yield json.dumps({"StatusCode": code, "Error": None}).encode()

        return Response(200, headers={"Content-Type": "application/json"}, stream=until_exit())

    def _kill(self, request: Request, cid: str) -> Any:
        container = self._container(cid)
        if container is None:
            return Response(404, {"message": "No such container"})
        container.state, container.exit_code = "exited", 137
        return Response(204)

    def _delete(self, request: Request, cid: str) -> Any:
        container = self._container(cid)
        if container is None:
            return Response(404, {"message": "No such container"})
        if container.state == "running" and request.arg("force") not in ("1", "true", "True"):
            return Response(409, {"message": "You cannot remove a running container. Stop the container before "
                                             "attempting removal or force remove"})
        container.state = "removed"
        self.removed.append(container.id)
        del self.containers[container.id]
        return Response(204)
