"""Clouds behind one provisioning interface (base.Provider); each SDK is imported only when its cloud is used."""

from __future__ import annotations

import importlib
from typing import Mapping

from cml_action.clouds.base import Provider
from cml_action.errors import UserError

MODULES = {"aws": "cml_action.clouds.aws", "gcp": "cml_action.clouds.gcp", "azure": "cml_action.clouds.azure"}


def open_provider(cloud: str, env: Mapping[str, str], region: str) -> Provider:
    name = (cloud or "").strip().lower()
    if name not in MODULES:
        raise UserError(f"--cloud must be one of {', '.join(MODULES)}, got {cloud!r}")
    if not region:
        raise UserError("--cloud-region is required (Azure: the location, e.g. westeurope)")
    return importlib.import_module(MODULES[name]).from_env(env, region)
