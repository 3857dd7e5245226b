#!/usr/bin/env python3
"""The prebuilt image: its size, what takes the space, and the start-up overhead from container start to the
training's first output line, against running the same training directly in the same container.

    python benchmarks/image_startup.py [--targets cpu gpu] [--runs 5]      (as root; builds with tests/image/build_local.sh)

"Container start" is the exec of the image's ENTRYPOINT in the container's filesystem (what the engine does once the
container exists: here a private mount namespace and chroot, see tests/image/docker_run.py). The baseline is
`python train.py` started the same way in the same container; both wait for the same first line. The overhead is
what cml-action adds before training starts (imports, argument parsing, context, input checks, git): goal ≤ 1 s.
The engine's own container creation (docker run: about 0.3-0.5 s with overlayfs) is the same for any image and is
not counted; with podman's vfs driver here it is a full copy of the image and would only measure this disk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CML_IMAGE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "cml-action-image")
PODMAN = ["podman", "--storage-driver", "vfs", "--root", str(CACHE / "storage"), "--runroot", str(CACHE / "run")]
MARKER = "epoch 0 loss 0.69"
TRAIN = f'print("{MARKER}", flush=True)\nopen("metrics.json", "w").write(\'{{"loss": 0.69}}\')\n'


def build(target: str) -> tuple[str, int, str]:
    out = subprocess.run([str(ROOT / "tests" / "image" / "build_local.sh"), target], capture_output=True, text=True,
                         check=True)
    tag = re.search(r"^image: (\S+)", out.stdout, re.M).group(1)
    size = int(re.search(r"^image size: (\d+)", out.stdout, re.M).group(1))
    layers = "\n".join(line.removeprefix("layer: ") for line in out.stdout.splitlines() if line.startswith("layer: "))
    return tag, size, layers


def space(root: Path, top: int = 12) -> list[tuple[str, int]]:
    """Sizes of the biggest things: each installed package of the venv and the system's big folders."""
    site = next(root.glob("opt/venv/lib/python3*/site-packages"))
    places = [p for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))]
    places += [root / d for d in ("usr/lib/x86_64-linux-gnu", "usr/lib/git-core", "usr/share/perl", "usr/bin",
                                  "usr/lib/python3.11", "usr/local/lib") if (root / d).exists()]
    sized = []
    for place in places:
        total = sum(f.stat().st_size for f in place.rglob("*") if f.is_file() and not f.is_symlink())
        sized.append((str(place.relative_to(root)), total))
    return sorted(sized, key=lambda x: -x[1])[:top]


def first_line(root: str, command: str) -> float:
    """Seconds from exec in the container to the training's first line."""
    env = ["PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin", "HOME=/github/home", "PYTHONUNBUFFERED=1",
           "PYTHONDONTWRITEBYTECODE=1", "MPLBACKEND=Agg"]
    inner = (f"mount --bind /dev {root}/dev && mount -t proc proc {root}/proc && exec chroot {root} /usr/bin/env -i "
             + " ".join(env) + f" /bin/sh -c 'cd /github/workspace && exec {command}'")
    started = time.perf_counter()
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--fork", "/bin/sh", "-c", inner],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if MARKER in line and seen is None:
            seen = time.perf_counter() - started
    proc.wait()
    if seen is None or proc.returncode != 0:
        raise SystemExit(f"benchmark: `{command}` failed (exit {proc.returncode})")
    return seen


def startup(tag: str, runs: int) -> tuple[float, float, list[tuple[str, int]]]:
    ctr = subprocess.run([*PODMAN, "create", tag], check=True, capture_output=True, text=True).stdout.strip()
    try:
        root = subprocess.run([*PODMAN, "mount", ctr], check=True, capture_output=True, text=True).stdout.strip()
        ws = Path(root, "github", "workspace")
        ws.mkdir(parents=True)
        Path(root, "github", "home").mkdir(parents=True)
        (ws / "train.py").write_text(TRAIN)
        (ws / "params.yaml").write_text("lr: 0.1\n")
        git = "git -c user.name=b -c user.email=b@e"
        subprocess.run(["chroot", root, "/bin/sh", "-c",
                        f"cd /github/workspace && git init -q -b main && {git} add -A && {git} commit -qm base"],
                       check=True)
        action = ('/app/entrypoint.py --run "python train.py" --metrics metrics.json --params params.yaml '
                  "--notebook-diff false --target none")
        first_line(root, action)  # once, for the page cache
        direct = [first_line(root, "python train.py") for _ in range(runs)]
        ours = [first_line(root, action) for _ in range(runs)]
        return statistics.median(direct), statistics.median(ours), space(Path(root))
    finally:
        subprocess.run([*PODMAN, "umount", ctr], capture_output=True)
        subprocess.run([*PODMAN, "rm", "-f", ctr], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["cpu"], choices=["cpu", "gpu"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("podman"):
        raise SystemExit("benchmark: run as root with podman and debootstrap installed (see tests/image/build_local.sh)")
    results = {}
    for target in args.targets:
        tag, size, layers = build(target)
        direct, ours, biggest = startup(tag, args.runs)
        results[target] = {"size_bytes": size, "direct_s": round(direct, 3), "action_s": round(ours, 3),
                           "overhead_s": round(ours - direct, 3), "ratio": round(ours / direct, 2)}
        print(f"== {target}: {tag}")
        print(f"image size: {size / 1e6:.0f} MB (goal ≤ 1000 MB)\nlayers:\n{layers}")
        print("biggest parts:\n" + "\n".join(f"  {n / 1e6:7.1f} MB  {name}" for name, n in biggest))
        print(f"first training line, median of {args.runs}: python train.py directly {direct:.3f} s, through the "
              f"action's entrypoint {ours:.3f} s: overhead {ours - direct:+.3f} s (goal ≤ 1 s), ratio {ours / direct:.2f}×")
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
