"""`cml-action COMMAND [--option value ...]`: the one entry for the action, GitLab, docker run and a shell.

Command modules are imported only when chosen, so `--help` and the report path never pay for cloud SDKs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from typing import Any, Callable, ContextManager, Sequence

from cml_action import __version__
from cml_action.errors import EXIT_USAGE, CmlError
from cml_action.options import (
    COMMANDS,
    OPTIONS,
    Option,
    parse_bool,
    parse_int,
    split_lines,
    split_list,
)

# command -> "module:function"; each function takes (args: argparse.Namespace, env: Mapping) -> exit code
HANDLERS: dict[str, str] = {
    "run": "cml_action.pipeline:run_command",
    "report": "cml_action.pipeline:run_command",
    "publish": "cml_action.pipeline:publish_command",
    "runner-launch": "cml_action.runners.commands:launch_command",
    "runner-teardown": "cml_action.runners.commands:teardown_command",
    "runner-sweep": "cml_action.runners.commands:sweep_command",
}

SUMMARIES = {
    "run": "train (when --run is given), build the report, post it",
    "report": "build the report from existing files and post it (no training)",
    "publish": "post a report folder or markdown file as is (the trusted half of the fork pattern)",
    "runner-launch": "launch a cloud VM with a one-job self-hosted runner",
    "runner-teardown": "delete the VM(s) and runner(s) of a launch label; idempotent",
    "runner-sweep": "delete expired or orphaned VMs and runners created by this tool",
}


def _converter(option: Option) -> Callable[[str], object]:
    if option.kind == "bool":
        return lambda text: parse_bool(option.name, text)
    if option.kind == "int":
        return lambda text: parse_int(option.name, text)
    if option.kind == "list":
        return split_list
    if option.kind == "lines":
        return split_lines
    return str


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and exits 2 on bad flags; keep that to one line plus usage, as users expect."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"cml-action: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cml-action", description="Continuous integration and delivery for machine learning.")
    parser.add_argument("--version", action="version", version=f"cml-action {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command, help=SUMMARIES[command], description=SUMMARIES[command])
        p.add_argument("--workdir", default=".", help="Workspace folder (default: the current directory).")
        for option in OPTIONS:
            if command not in option.commands:
                continue
            convert = _converter(option)
            p.add_argument(
                f"--{option.name}",
                dest=option.dest,
                default=convert(option.default),
                type=convert,
                nargs="?" if option.kind == "bool" else None,
                const=True if option.kind == "bool" else None,
                metavar="TEXT" if option.kind != "bool" else "BOOL",
                help=f"{option.help}" + (f" (default: {option.default})" if option.default else ""),
            )
    return parser


def _early_painter(args: argparse.Namespace) -> ContextManager[Any]:
    """For `report`, the drawing process starts here, before the pipeline is imported: importing the drawing
    stack then overlaps everything else (cml_action/plots/painter.py)."""
    from cml_action.plots.painter import early

    return early(args) or contextlib.nullcontext()


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ if env is None else env)
    if not argv or argv[0].startswith("--") and argv[0] not in ("--help", "-h", "--version"):
        argv.insert(0, "run")  # `docker run IMAGE --run "python train.py"` means the run command
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with _early_painter(args) as painter:
            module_name, func_name = HANDLERS[args.command].split(":")
            handler = getattr(importlib.import_module(module_name), func_name)
            return int(handler(args, environ, painter=painter) if painter else handler(args, environ))
    except CmlError as exc:
        print(f"cml-action: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cml-action: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, the traceback on request
        if environ.get("CML_DEBUG"):
            raise
        print(f"cml-action: internal error: {type(exc).__name__}: {exc} (set CML_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
