"""The `azure_cloud` fixture: the ARM stand-in over TLS (azure-identity insists on https), reached by the real Azure
SDK through CML_AZURE_ENDPOINT and AZURE_AUTHORITY_HOST, trusted through REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterator

import pytest

from standins.arm.server import SUB, TENANT, ArmStandIn

REGION = "westeurope"


class AzureCloud:
    cloud = "azure"
    region = REGION

    def __init__(self, tmp: Path) -> None:
        self.standin = ArmStandIn()
        self.cert, key = ArmStandIn.self_signed(tmp)
        self.standin.start(tls=(self.cert, key))
        self.env = {"CML_AZURE_ENDPOINT": self.standin.url, "AZURE_AUTHORITY_HOST": self.standin.url,
                    "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "launcher", "AZURE_CLIENT_SECRET": "launcher-secret",
                    "AZURE_SUBSCRIPTION_ID": SUB, "REQUESTS_CA_BUNDLE": self.cert}

    def fail_capacity(self, zone: str, times: int = 1) -> None:
        self.standin.fail_vm("ZonalAllocationFailed", "Allocation failed. We do not have sufficient capacity for the "
                             "requested VM size in this zone.", zone, times)

    def fail_quota(self, times: int = 1) -> None:
        self.standin.fail_vm("OperationNotAllowed", "Operation could not be completed as it results in exceeding "
                             "approved standardNCASv3_T4 Family Cores quota.", None, times)

    def fail_throttle(self, times: int = 1) -> None:
        self.standin.inject("*", r"(?i)^/subscriptions/", 429, headers={"Retry-After": "0"},
                            body={"error": {"code": "TooManyRequests", "message": "throttled"}}, times=times)

    def instances(self) -> list[dict]:
        out = []
        for group in self.standin.groups.values():
            for key, vm in group.resources.items():
                if key.startswith("virtualMachines/"):
                    out.append({"id": group.name, "name": vm["name"], "zone": (vm.get("zones") or [""])[0],
                                "state": vm.get("_power", "running"), "tags": vm.get("tags", {}),
                                "startup_script": base64.b64decode(vm.get("_custom_data", "")).decode(), "raw": vm})
        return out

    def set_state(self, instance_id: str, state: str, preempted: bool = False) -> None:
        group = self.standin.groups[instance_id.lower()]
        for key in [k for k in group.resources if k.startswith(("virtualMachines/", "disks/", "extensions/"))]:
            if preempted:
                del group.resources[key]  # eviction policy Delete
            elif key.startswith("virtualMachines/"):
                group.resources[key]["_power"] = state

    def secrets(self) -> dict[str, str]:
        found = {}
        for group in self.standin.groups.values():
            for key, res in group.resources.items():
                if key.startswith("extensions/") and res.get("_protected"):
                    found[key] = res["_protected"]["commandToExecute"]
        return found

    def leftovers(self) -> list[str]:
        return [f"resource group {g.name} ({len(g.resources)} resources)" for g in self.standin.groups.values()]

    def assert_clean(self) -> None:
        self.standin.assert_clean()


@pytest.fixture()
def azure_cloud(tmp_path: Path) -> Iterator[AzureCloud]:
    cloud = AzureCloud(tmp_path)
    try:
        yield cloud
        cloud.assert_clean()
    finally:
        cloud.standin.stop()


def custom_data(vm: dict) -> str:
    return base64.b64decode(vm["properties"]["osProfile"].get("customData", "")).decode()
