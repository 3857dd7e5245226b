"""Clouds behind one provisioning interface (base.Provider); each SDK is imported only when its cloud is used."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from cml_action.clouds.base import Provider
from cml_action.errors import UserError

MODULES = {"aws": "cml_action.clouds.aws", "gcp": "cml_action.clouds.gcp", "azure": "cml_action.clouds.azure",
           "kubernetes": "cml_action.clouds.kubernetes"}


def open_provider(cloud: str, env: Mapping[str, str], region: str, settings: Mapping[str, Any] | None = None) -> Provider:
    """`settings`: the command's parsed options; Kubernetes reads its own (namespace, node selector...) from them."""
    name = (cloud or "").strip().lower()
    if name not in MODULES:
        raise UserError(f"--cloud must be one of {', '.join(MODULES)}, got {cloud!r}")
    if name == "kubernetes":  # a cluster has no region: --cloud-region optionally names the kubeconfig context
        return importlib.import_module(MODULES[name]).from_env(env, region, settings or {})
    if not region:
        raise UserError("--cloud-region is required (Azure: the location, e.g. westeurope)")
    return importlib.import_module(MODULES[name]).from_env(env, region)
