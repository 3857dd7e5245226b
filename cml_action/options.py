"""The one table of user-facing options.

Every action input is a CLI flag of the same name (`INPUT_CLOUD-REGION` -> `--cloud-region`), so the
action, GitLab's template, `docker run` and a shell all take the same words. `action.yml`, the README
and the argparse parser are checked against this table by the tests, so documentation cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cml_action.errors import UserError

Kind = Literal["str", "bool", "list", "int", "lines"]

REPORT_COMMANDS = ("run", "report", "publish")
BUILD_COMMANDS = ("run", "report")  # commands that build a report (publish posts one as is)
RUNNER_COMMANDS = ("runner-launch", "runner-teardown", "runner-sweep")
COMMANDS = REPORT_COMMANDS + RUNNER_COMMANDS


@dataclass(frozen=True)
class Option:
    name: str
    help: str
    default: str = ""
    kind: Kind = "str"
    commands: tuple[str, ...] = REPORT_COMMANDS
    action_default: str | None = None  # what action.yml writes when it differs (e.g. ${{ github.token }})

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    # --- the core loop -------------------------------------------------------------------------
    Option("run", "Shell command that trains (run in the workspace, output streamed live).", commands=("run",)),
    Option("timeout", "Time limit for `run` (`90m`, `12h`; empty: none). Past it the command is stopped, and the report "
           "says it timed out and is still posted.", commands=("run",)),
    Option("metrics", "Metric files (JSON, YAML, CSV, TSV) or globs, separated by spaces or newlines.", kind="list",
           commands=BUILD_COMMANDS),
    Option("params", "Parameter files (YAML, JSON, TOML, CSV) or globs.", kind="list", commands=BUILD_COMMANDS),
    Option(
        "plots",
        "Images to embed and data files (CSV/TSV/JSON) to plot, or globs; a data file may carry options "
        "on its line: `loss.csv x=epoch y=loss,val_loss title=\"Loss\"`.",
        kind="lines",
        commands=BUILD_COMMANDS,
    ),
    Option("report", "A markdown file of yours to include; with `command: publish`, a report folder or file posted as is."),
    Option(
        "baseline",
        "Git ref to compare with, or several (`main v1.2.0`): a column each, plots overlaid; the first is the "
        "one the summary and gates use. Default: the pull request's base branch; on a push to the default "
        "branch, the previous tip; else the default branch. `none` disables comparison.",
        commands=BUILD_COMMANDS,
    ),
    Option("target", "Where to post: `auto`, `pr`, `commit`, `issue:N` or `none`.", default="auto"),
    Option("title", "Report heading, and the key of the sticky comment (one comment per title).", default="CML report"),
    Option("update", "Edit the previous comment with the same title instead of posting a new one.", default="true", kind="bool"),
    Option("check", "Also create a check run whose conclusion follows the quality gates.", default="false", kind="bool"),
    Option("token", "Token for the forge API. GitLab: a token with `api` scope in CML_TOKEN.", action_default="${{ github.token }}",
           commands=COMMANDS),
    Option("assets-branch", "Branch of this repository that stores report images.", default="cml-assets"),
    Option("output-dir", "Folder for the report file and rendered images.", default="cml-report", commands=BUILD_COMMANDS),
    # --- reports that decide -----------------------------------------------------------------
    Option("gates", "Quality gates, one rule a line: `accuracy >= baseline - 0.005`.", kind="lines",
           commands=BUILD_COMMANDS),
    Option("gates-missing", "When a gate's metric or baseline is missing: `fail` or `skip`.", default="fail", commands=BUILD_COMMANDS),
    Option("fail-on-gate", "Exit non-zero when a gate fails (false: report only).", default="true", kind="bool"),
    Option("headline", "The metric shown in the summary line (default: the first metric).", commands=BUILD_COMMANDS),
    Option("tensorboard", "TensorBoard log directory whose scalars are plotted.", commands=BUILD_COMMANDS),
    Option("notebook-diff", "Add a diff of notebooks changed since the baseline.", default="true", kind="bool",
           commands=BUILD_COMMANDS),
    Option("dvc-pull", "Run `dvc pull` before training.", default="false", kind="bool", commands=("run",)),
    Option("dvc-repro", "Run `dvc repro` when `run` is empty.", default="false", kind="bool", commands=("run",)),
    Option("dvc-push", "Run `dvc push` after training.", default="false", kind="bool", commands=("run",)),
    # --- training in the user's own image -------------------------------------------------------
    Option("train-image", "Run `run` inside this Docker image (through the Docker engine) instead of the action's own, with every GPU of the engine's host when it can give them.",
           commands=("run",)),
    Option("train-env", "Names of environment variables passed into `train-image` (allow-list).", kind="list",
           commands=("run",)),
    # --- cloud runners -------------------------------------------------------------------------
    Option("cloud", "Cloud for the runner: `aws`, `gcp`, `azure` or `kubernetes`.", commands=RUNNER_COMMANDS),
    Option("cloud-region", "Region (Azure: location; Kubernetes: the kubeconfig context, default the current one).",
           commands=RUNNER_COMMANDS),
    Option("cloud-zone", "Zones to try in order (default: every zone of the region).", kind="list", commands=("runner-launch",)),
    Option("cloud-type", "Machine type: generic `s`, `m`, `l`, `xl` or native; a list is a fallback order.", default="m",
           kind="list", commands=("runner-launch",)),
    Option("cloud-gpu", "GPU: `none`, `t4`, `l4`, `a10g`, `v100`, `a100`, `h100` or a native accelerator "
           "(Kubernetes: also `any`, or a `nvidia.com/gpu.product` value).", default="none",
           commands=("runner-launch",)),
    Option("cloud-gpu-count", "Number of GPUs.", default="1", kind="int", commands=("runner-launch",)),
    Option("cloud-spot", "Use spot / preemptible capacity.", default="false", kind="bool", commands=("runner-launch",)),
    Option("cloud-spot-fallback", "Fall back to on-demand when no spot capacity is found.", default="false", kind="bool",
           commands=("runner-launch",)),
    Option("cloud-image", "Machine image override (AMI id, GCE image URL, Azure image URN; Kubernetes: the runner "
           "container's image).", commands=("runner-launch",)),
    Option("cloud-disk-size", "Boot disk size in GB (Kubernetes: size limit of the jobs' work volume).", default="100",
           kind="int", commands=("runner-launch",)),
    Option("cloud-subnet", "Subnet (AWS subnet id, GCE subnetwork, Azure subnet resource id).", commands=("runner-launch",)),
    Option("cloud-permission-set", "Instance profile (AWS), service account (GCP) or managed identity (Azure) for the VM; "
           "Kubernetes: the pod's service account (its token is mounted only then).", commands=("runner-launch",)),
    Option("kubernetes-namespace", "Namespace of the runner pods (default: the kubeconfig context's, or the "
           "launcher pod's own).", commands=RUNNER_COMMANDS),
    Option("kubernetes-node-selector", "Node labels `key=value` the runner pod must land on, separated by spaces or "
           "newlines.", kind="list", commands=("runner-launch",)),
    Option("kubernetes-tolerations", "Taints the runner pod tolerates, in kubectl's syntax `key=value:Effect`, "
           "`key:Effect` or `key` (GPU pods also tolerate `nvidia.com/gpu`).", kind="list", commands=("runner-launch",)),
    Option("kubernetes-image-pull-secrets", "Names of Secrets (in the namespace) used to pull the runner image.",
           kind="list", commands=("runner-launch",)),
    Option("cloud-tags", "Extra tags `key=value`, separated by spaces or newlines.", kind="list", commands=("runner-launch",)),
    Option("runner-labels", "Extra runner labels (the unique launch label is always added).", kind="list",
           commands=("runner-launch",)),
    Option("runner-label", "The launch's unique label: printed by runner-launch (which generates one unless you choose it "
           "here: `cml-` then lower-case letters, digits, dashes), given to teardown.",
           commands=("runner-launch", "runner-teardown")),
    Option("runner-idle-timeout", "Power off when no job started within this time.", default="5m", commands=("runner-launch",)),
    Option("runner-max-lifetime", "Hard cap on the machine's life.", default="12h", commands=RUNNER_COMMANDS),
    Option("runner-boot-timeout", "How long to wait for the runner to come online.", default="15m", commands=("runner-launch",)),
    Option("retry-on-preemption", "Re-run the workflow's failed jobs when the spot machine was preempted.", default="false",
           kind="bool", commands=("runner-teardown",)),
)

OUTPUTS: dict[str, str] = {
    "report-path": "Path of the full markdown report file.",
    "comment-url": "URL of the posted or updated comment (empty when nothing was posted).",
    "check-url": "URL of the check run (empty unless `check: true`).",
    "gates": "`passed`, `failed` or `none`.",
    "runner-label": "Unique label of the launched runner (runner-launch).",
    "runner-name": "Name of the launched runner (runner-launch).",
    "instance-ids": "Cloud instance ids, space separated (runner-launch).",
}

BY_NAME = {o.name: o for o in OPTIONS}

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UserError(f"--{name}: expected true or false, got {text!r}")


def parse_int(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UserError(f"--{name}: expected a whole number, got {text!r}") from None


def split_list(text: str) -> list[str]:
    """Inputs arrive as one string (YAML block or flow): split on whitespace and newlines."""
    return text.split()


def split_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def parse_pairs(name: str, items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`key=value` items (tags, node selectors) -> a mapping; a malformed item names its option."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--{name}: expected key=value, got {item!r}")
        pairs[key] = value
    return pairs


def parse_duration(name: str, text: str) -> int:
    """`90s`, `5m`, `12h`, `1d` or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value)
    except ValueError:
        raise UserError(f"--{name}: expected a duration like 90s, 5m or 12h, got {text!r}") from None
    if seconds <= 0:
        raise UserError(f"--{name}: must be positive, got {text!r}")
    return int(seconds)
