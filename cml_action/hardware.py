"""One line about the machine that trained, so a reviewer can tell a slow run from a slow machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def gpus() -> list[str]:
    """GPU names and memory from nvidia-smi; [] when there is none (or it hangs: bounded to 10 s)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [", ".join(p.strip() for p in line.split(",")) for line in out.stdout.splitlines() if line.strip()]


def describe() -> str:
    cpu = f"{cpu_model()} ×{os.cpu_count() or 1}"
    found = gpus()
    if not found:
        return cpu
    names: dict[str, int] = {}
    for g in found:
        names[g] = names.get(g, 0) + 1
    gpu_text = ", ".join(f"{n}× {name}" if n > 1 else name for name, n in names.items())
    return f"{cpu}, GPU: {gpu_text}"
