"""The part of kube-scheduler a runner pod meets: node selector and required node affinity, taints and
tolerations, and resource fit (cpu, memory, nvidia.com/gpu). A pod that fits nowhere gets the scheduler's own
kind of message, e.g. `0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint
{nvidia.com/gpu: present}.`
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str) -> Decimal:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    return Decimal(match.group(1)) * Decimal(_SUFFIX[match.group(2)])


@dataclass
class Node:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)  # {key, value, effect}
    allocatable: dict[str, str] = field(default_factory=lambda: {"cpu": "16", "memory": "64Gi"})


def _requests(container: dict) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}  # requests default to limits
    return {name: quantity(value) for name, value in merged.items()}


def pod_requests(spec: dict) -> dict[str, Decimal]:
    total: Counter = Counter()
    for container in spec.get("containers", []):
        total.update(_requests(container))
    for container in spec.get("initContainers", []):  # init containers run one at a time: the max counts
        for name, value in _requests(container).items():
            total[name] = max(total[name], value)
    return dict(total)


def _expression(expr: dict, labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def _affinity_ok(spec: dict, node: Node) -> bool:
    if any(node.labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    return any(all(_expression(e, node.labels) for e in term.get("matchExpressions", []))
               for term in required["nodeSelectorTerms"])


def _tolerated(taint: dict, tolerations: list[dict]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        if tol.get("operator") == "Exists" and (not tol.get("key") or tol["key"] == taint["key"]):
            return True
        if tol.get("key") == taint["key"] and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def why_not(spec: dict, node: Node, used: dict[str, Decimal]) -> str:
    """The first filter that rejects the node, worded as the scheduler words it; "" when the pod fits."""
    if not _affinity_ok(spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in node.taints:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not _tolerated(taint, spec.get("tolerations") or []):
            return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
    for name, amount in sorted(pod_requests(spec).items()):
        free = quantity(node.allocatable.get(name, "0")) - used.get(name, Decimal(0))
        if amount > free:
            return f"Insufficient {name}"
    return ""


def schedule(spec: dict, nodes: list[Node], usage: dict[str, dict[str, Decimal]]) -> tuple[str, str]:
    """(node name, "") or ("", the Unschedulable message)."""
    reasons: Counter = Counter()
    for node in nodes:
        reason = why_not(spec, node, usage.get(node.name, {}))
        if not reason:
            return node.name, ""
        reasons[reason] += 1
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return "", f"0/{len(nodes)} nodes are available: {detail}." if nodes else "no nodes available to schedule pods"
