#!/usr/bin/env python3
"""What guarding a chatty training costs: 200,000 log lines through `run_training` (redaction of every known
secret and its encodings, stop-commands, bounded reads) against `cat` of the same lines into /dev/null through
a plain pipe loop, in the same script. Prints the ratio; the target is under 2x a plain line-by-line copy."""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import best_of  # benchmarks/ is the script folder, so its helper imports by name


def main() -> None:
    from cml_action.ci.context import CIContext
    from cml_action.train import run_training

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.txt"
        log.write_text("".join(f"epoch {i // 1000} step {i} loss={1 / (i + 1):.6f} lr=0.001 grad_norm=1.2345\n"
                               for i in range(200_000)))
        command = f"cat {log}"
        env = {"PATH": "/usr/bin:/bin", "GITHUB_TOKEN": "ghs_" + "x" * 36, "AWS_SECRET_ACCESS_KEY": "k" * 40,
               "CI_JOB_TOKEN": "glcbt-" + "y" * 20}
        ctx = CIContext(kind="github", workspace=Path(tmp))
        from cml_action.redact import secret_values

        ctx.redactor.add(*secret_values(env))

        def ours() -> None:
            run_training(command, Path(tmp), ctx, env, out=io.StringIO())

        def plain() -> None:  # the old loop: readline, decode, print
            proc = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            sink = io.StringIO()
            for raw in iter(proc.stdout.readline, b""):
                print(raw.decode("utf-8", errors="replace").rstrip("\r\n"), file=sink, flush=True)
            proc.wait()

        guarded, baseline = best_of(3, ours), best_of(3, plain)
    print(f"200,000 log lines: guarded {guarded:.3f} s, plain copy {baseline:.3f} s, ratio {guarded / baseline:.2f}x")
    sys.exit(0)


if __name__ == "__main__":
    main()
