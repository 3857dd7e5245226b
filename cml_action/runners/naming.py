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


def cloud_label(cloud: str) -> str:
    """Every runner also carries its cloud, so sweeping one cloud never touches another cloud's runners."""
    return f"cml-cloud-{cloud}"
