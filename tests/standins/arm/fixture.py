"""The `azure_cloud` fixture: the ARM stand-in over TLS (azure-identity insists on https), reached by the real Azure
SDK through CML_AZURE_ENDPOINT and AZURE_AUTHORITY_HOST (a real client-credentials token flow), trusting the stand-in's
certificate through REQUESTS_CA_BUNDLE in `env`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

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
                             "requested VM size in this zone. Read more about improving likelihood of allocation "
                             "success at http://aka.ms/allocation-guidance", zone, times)

    def fail_quota(self, times: int = 1) -> None:
        self.standin.fail_vm("OperationNotAllowed", "Operation could not be completed as it results in exceeding "
                             "approved standardNCASv3_T4Family Cores quota. Additional details - Deployment Model: "
                             "Resource Manager, Location: westeurope, Current Limit: 0, Current Usage: 0, Additional "
                             "Required: 4, (Minimum) New Limit Required: 4.", None, times)

    def fail_sku(self, zone: str | None = None, times: int = 1) -> None:
        where = f"location '{REGION}'" + (f" zones '{zone}'" if zone else "")
        self.standin.fail_vm("SkuNotAvailable", f"The requested VM size for resource 'Following SKUs have failed for "
                             f"Capacity Restrictions: Standard_NC4as_T4_v3' is currently not available in {where} for "
                             "subscription '" + SUB + "'. Please try another size or deploy to a different location or "
                             "zones. See https://aka.ms/azureskunotavailable for details.", zone, times)

    def fail_throttle(self, times: int = 1) -> None:
        self.standin.inject("*", r"(?i)^/subscriptions/", 429, headers={"Retry-After": "0"},
                            body={"error": {"code": "TooManyRequests", "message": "The request is being throttled."}},
                            times=times)

    def instances(self) -> list[dict]:
        out = []
        with self.standin.lock:
            self.standin.settle()
            for group in self.standin.groups.values():
                for key, vm in group.resources.items():
                    if key.startswith("virtualMachines/"):
                        out.append({"id": group.name, "name": vm["name"], "zone": (vm.get("zones") or [""])[0],
                                    "state": vm["_power"], "tags": vm.get("tags", {}),
                                    "startup_script": base64.b64decode(vm["_custom_data"]).decode(), "raw": vm})
        return out

    def set_state(self, instance_id: str, state: str, preempted: bool = False) -> None:
        with self.standin.lock:
            if preempted:
                self.standin.evict(instance_id)  # eviction policy Delete: the VM and what is marked Delete go
                return
            if state in ("terminated", "deleted"):
                self.standin.delete_group(instance_id)  # what the VM's own power-off does
                return
            group = self.standin.groups[instance_id.lower()]
            for key, resource in group.resources.items():
                if key.startswith("virtualMachines/"):
                    resource["_power"] = state

    def secrets(self) -> dict[str, str]:
        found = {}
        with self.standin.lock:
            for group in self.standin.groups.values():
                for key, res in group.resources.items():
                    protected = res.get("_protected") or {}
                    if key.startswith("extensions/") and protected:
                        # what the extension runs on the VM: its script (base64 in the settings) or its command
                        script = protected.get("script")
                        found[key] = base64.b64decode(script).decode() if script else protected["commandToExecute"]
        return found

    def leftovers(self) -> list[str]:
        with self.standin.lock:
            self.standin.settle()
            lines = [f"resource group {g.name}" for g in self.standin.groups.values()]
            lines += [f"{key} in {g.name}" for g in self.standin.groups.values() for key in g.resources]
        return lines

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
