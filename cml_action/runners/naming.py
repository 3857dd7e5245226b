"""Names and labels of launched runners: unique per launch, and telling their age and cloud to runner-sweep."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

PREFIX = "cml-"
_NAME = re.compile(r"cml-(\d{14})-([0-9a-f]{6})\Z")


def new_name(now: datetime | None = None) -> str:
    """`cml-20261123T0942...`: the launch time is part of the name, so a sweep can give a booting runner grace."""
    moment = (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")
    return f"{PREFIX}{moment}-{secrets.token_hex(3)}"


def created_at(name: str) -> datetime | None:
    match = _NAME.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


def is_launch_label(text: str) -> bool:
    return bool(_NAME.match(text))


# A label the caller chooses (GitLab selects the runner with `tags:`, which GitLab expands when it creates the
# pipeline, before any job ran: the label must be computable from pipeline variables, e.g. cml-$CI_PROJECT_ID-$CI_PIPELINE_IID).
_CHOSEN = re.compile(r"cml-[a-z0-9][a-z0-9-]{0,58}[a-z0-9]\Z")
CHOSEN_RULE = "cml- then 2-60 lower-case letters, digits and dashes (not cml-cloud-...)"


def is_chosen_label(text: str) -> bool:
    """`cml-cloud-*` is every runner of a cloud: never a launch's own label."""
    return bool(_CHOSEN.match(text)) and not text.startswith("cml-cloud-")


def is_label(text: str) -> bool:
    """What teardown accepts: a generated launch label or a chosen one, never a generic label like `gpu`."""
    return is_launch_label(text) or is_chosen_label(text)


def cloud_label(cloud: str) -> str:
    """Every runner also carries its cloud, so sweeping one cloud never touches another cloud's runners."""
    return f"cml-cloud-{cloud}"
