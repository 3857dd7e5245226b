#!/usr/bin/env python3
"""`docker run` for a podman-built image where no container can be started (no engine; podman cannot start
containers in this sandbox): the image's filesystem as a writable container (`podman create` + `podman mount`),
the `-v` bind mounts made in a private mount namespace, then chroot and exec of the image's ENTRYPOINT with the
image's environment overlaid by `-e`, in `--workdir`, as root. Like dockerd it creates /.dockerenv and sets HOSTNAME to
the container's short id. It shares the host network (stand-ins on 127.0.0.1 are reachable) and has no GPU.

    tests/image/docker_run.py [--name N] [--label L] [--workdir D] [--rm] [-e NAME | -e NAME=VALUE]...
                              [-v SRC:DST[:ro]]... [--entrypoint E] [--network host] IMAGE [ARG...]

The flags are the subset that actions/runner's DockerCommandManager.DockerRun passes for a container action; a bare
`-e NAME` takes the value from this process's environment, as the docker CLI does. The exit status is the entrypoint's.
Storage: the vfs store of tests/image/build_local.sh (CML_IMAGE_CACHE).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def podman() -> list[str]:
    cache = Path(os.environ.get("CML_IMAGE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "cml-action-image")
    return ["podman", "--storage-driver", "vfs", "--root", str(cache / "storage"), "--runroot", str(cache / "run")]


def _value_flag(spec: dict, flag: str, value: str) -> None:
    if flag == "--network" and value != "host":
        raise SystemExit(f"docker_run: only --network host is supported, not {value}")
    if flag == "-e":
        name, eq, val = value.partition("=")
        if eq or name in os.environ:  # a bare -e NAME that is unset is dropped, as by the docker CLI
            spec["env"].append((name, val if eq else os.environ[name]))
    elif flag == "-v":
        parts = value.split(":")
        if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/"):
            raise SystemExit(f"docker_run: -v takes /source:/target[:ro], not {value}")
        spec["mounts"].append({"source": parts[0], "target": parts[1], "ro": parts[2:] == ["ro"]})
    elif flag == "--workdir":
        spec["workdir"] = value
    elif flag == "--entrypoint":
        spec["entrypoint"] = value


def parse(argv: list[str]) -> dict:
    spec: dict = {"env": [], "mounts": [], "workdir": "", "entrypoint": None, "image": "", "args": []}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag == "--rm":
            i += 1
        elif flag in ("--name", "--label", "--network", "--workdir", "-e", "-v", "--entrypoint"):
            _value_flag(spec, flag, argv[i + 1])
            i += 2
        elif flag.startswith("-"):
            raise SystemExit(f"docker_run: unsupported flag {flag}")
        else:
            spec["image"], spec["args"] = flag, argv[i + 1:]
            break
    if not spec["image"]:
        raise SystemExit("docker_run: no image given")
    return spec


def in_root(root: str, path: str, depth: int = 0) -> Path:
    """`path` as the container sees it, resolved inside `root`: an image's absolute symlink (Debian's /var/run ->
    /run) must not lead out to the host's own /run."""
    assert depth < 40, f"docker_run: too many symlinks under {path}"
    current = Path(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for i, part in enumerate(parts):
        if part == "..":
            current = current.parent if current != Path(root) else current
            continue
        candidate = current / part
        if candidate.is_symlink():
            link = os.readlink(candidate)
            inside = link if link.startswith("/") else str(Path("/", current.relative_to(root), link))
            return in_root(root, "/".join([inside, *parts[i + 1:]]), depth + 1)
        current = candidate
    return current


def inner(spec: dict) -> None:
    """In the private mount namespace: bind mounts, /dev and /proc, chroot, exec."""
    root = spec["root"]
    for mount in spec["mounts"]:
        source, target = Path(mount["source"]), in_root(root, mount["target"])
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        if mount["ro"]:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
    subprocess.run(["mount", "--bind", "/dev", root + "/dev"], check=True)
    subprocess.run(["mount", "-t", "proc", "proc", root + "/proc"], check=True)
    os.chroot(root)
    os.chdir(spec["workdir"] or "/")
    program = spec["argv"][0]
    if "/" not in program:  # like the engine: looked up on the container's PATH
        import shutil

        program = shutil.which(program, path=spec["environ"].get("PATH", "/usr/bin:/bin")) or program
    os.execve(program, spec["argv"], spec["environ"])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--inner"]:
        inner(json.loads(argv[1]))
        return 127
    spec = parse(argv)
    config = json.loads(subprocess.run([*podman(), "image", "inspect", "--format", "{{json .Config}}", spec["image"]],
                                       check=True, capture_output=True, text=True).stdout)
    entry = [spec["entrypoint"]] if spec["entrypoint"] else list(config.get("Entrypoint") or [])
    command = entry + (spec["args"] or ([] if spec["entrypoint"] else list(config.get("Cmd") or [])))
    if not command:
        raise SystemExit("docker_run: the image has no entrypoint or command")
    ctr = subprocess.run([*podman(), "create", spec["image"]], check=True, capture_output=True, text=True).stdout.strip()
    try:
        root = subprocess.run([*podman(), "mount", ctr], check=True, capture_output=True, text=True).stdout.strip()
        in_root(root, "/.dockerenv").touch()
        environ = dict(item.split("=", 1) for item in config.get("Env") or [])
        environ["HOSTNAME"] = ctr[:12]
        environ.update(dict(spec["env"]))
        spec.update(root=root, argv=command, environ=environ)
        if spec["workdir"]:
            in_root(root, spec["workdir"]).mkdir(parents=True, exist_ok=True)
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", sys.executable,
                               __file__, "--inner", json.dumps(spec)]).returncode
    finally:
        subprocess.run([*podman(), "umount", ctr], capture_output=True)
        subprocess.run([*podman(), "rm", "-f", ctr], capture_output=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
