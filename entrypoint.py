#!/usr/bin/env python3
"""The container's entry: action inputs (INPUT_<NAME>) or variables (CML_<NAME>, GitLab CI and `docker run -e`)
become `cml-action` flags, then the CLI runs.

Arguments given directly (`docker run IMAGE --run "python train.py"`) come after the inputs and win.
Kept thin and import-light so that start-up stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cml_action.cli import main  # noqa: E402
from cml_action.options import BY_NAME, COMMANDS  # noqa: E402


def _setting(env: dict[str, str], name: str) -> str:
    """An action input (INPUT_CLOUD-REGION) or, for GitLab CI and `docker run -e`, a variable (CML_CLOUD_REGION)."""
    value = env.get(f"INPUT_{name.upper()}")
    if value is None or value == "":
        value = env.get("CML_" + name.upper().replace("-", "_"), "")
    return value


def argv_from_inputs(env: dict[str, str]) -> list[str]:
    command = env.get("INPUT_COMMAND", "").strip() or env.get("CML_COMMAND", "").strip() or "run"
    argv = [command]
    for name, option in BY_NAME.items():
        if name == "token":
            continue  # read by the CLI itself from INPUT_TOKEN / CML_TOKEN, never placed on a command line
        value = _setting(env, name)
        if value == "" or command not in option.commands:
            continue
        argv += [f"--{name}", value]
    token = env.get("INPUT_TOKEN", "")
    if token and command in BY_NAME["token"].commands:
        argv += ["--token", token]
    return argv


def build_argv(env: dict[str, str], args: list[str]) -> list[str]:
    if args and args[0] in COMMANDS + ("--help", "-h", "--version"):
        inputs = argv_from_inputs({**env, "INPUT_COMMAND": args[0] if args[0] in COMMANDS else ""})
        return args[:1] + inputs[1:] + args[1:] if args[0] in COMMANDS else args
    return argv_from_inputs(env) + args


if __name__ == "__main__":
    environ = dict(os.environ)
    workspace = environ.get("GITHUB_WORKSPACE")
    argv = build_argv(environ, sys.argv[1:])
    if workspace and "--workdir" not in argv and Path(workspace).is_dir() and Path.cwd() != Path(workspace):
        argv += ["--workdir", workspace]
    raise SystemExit(main(argv, environ))
