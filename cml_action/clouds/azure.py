"""Azure through azure-mgmt-compute / -network / -resource / -authorization and azure-identity, imported lazily.

Guarantee: a guest shutdown leaves an Azure VM stopped and still billed, so every runner lives in its own resource
group and power-off deletes that whole group: the VM has a system-assigned managed identity holding Contributor on
its own group only, and its power-off asks ARM (with an IMDS token) to delete the group, then shuts down as a last
resort. Spot VMs use eviction policy Delete; OS disk and NIC have deleteOption Delete. Deleting the group removes
everything created for the runner at once (VM, disk, NIC, NSG, VNet, extensions, role assignment, schedule), which
is also what teardown, sweep and a failed create do. When the lifetime is under a day, an auto-shutdown schedule on
the VM (Microsoft.DevTestLab) is a cloud-side backstop: the VM is shut down by Azure at its expiry even if
everything on it hangs.

Secret hand-over: not custom data (Azure keeps it and any process on the VM can read it back through IMDS). The
registration travels in the `protectedSettings` of a CustomScript extension: encrypted to the VM's own certificate,
never returned by any API. The extension writes it to a root-only file, the bootstrap reads and shreds it, then
removes the extension through ARM so Azure forgets the settings too. Key Vault would need a vault per runner (or a
shared one with per-secret access), soft-delete purging and more permissions, for no gain on a single-use secret.

Network: no public IP and no inbound rule (the runner's NSG has none; Azure's default rules deny inbound from the
Internet). Outbound (the forge, package mirrors) uses Azure's default outbound access, which the VNet created per
runner asks for explicitly: subnets of VNets created with network API 2025-07-01 or later are private by default
(no outbound) since March 31, 2026. Organisations that forbid default outbound access pass `cloud-subnet`: a subnet
with an explicit outbound path (NAT gateway, firewall); the runner's NIC joins it, still without a public IP.

Disks: managed disks are always encrypted at rest with platform-managed keys; encryption at host (temporary disk and
caches too) is requested and dropped only when the subscription has not registered the EncryptionAtHost feature.
"""

from __future__ import annotations

import base64
import re
import shlex
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from cml_action.clouds.base import TAG_RUNNER, CapacityError, Instance, MachineSpec, Placement
from cml_action.errors import CloudError, UserError
from cml_action.failures import one_line

T = TypeVar("T")

SIZES = {"s": "Standard_D2s_v5", "m": "Standard_D8s_v5", "l": "Standard_D16s_v5", "xl": "Standard_D32s_v5"}
GPUS = {"t4": "Standard_NC4as_T4_v3 (4 GPUs: NC64as_T4_v3)", "a10g": "Standard_NV36ads_A10_v5 (A10; 2: NV72ads_A10_v5)",
        "a100": "Standard_NC24ads_A100_v4 (2: NC48ads, 4: NC96ads)", "h100": "Standard_NC40ads_H100_v5 (2: NC80adis_H100_v5)"}
_GPU_SIZES = {
    "t4": {1: "Standard_NC4as_T4_v3", 4: "Standard_NC64as_T4_v3"},
    "a10g": {1: "Standard_NV36ads_A10_v5", 2: "Standard_NV72ads_A10_v5"},
    "a100": {1: "Standard_NC24ads_A100_v4", 2: "Standard_NC48ads_A100_v4", 4: "Standard_NC96ads_A100_v4"},
    "h100": {1: "Standard_NC40ads_H100_v5", 2: "Standard_NC80adis_H100_v5"},
}
_NOT_OFFERED = {"v100": "Azure retired its V100 sizes (NCv3, NDv2)", "l4": "Azure offers no L4 sizes"}
# Canonical's Ubuntu 24.04 for CPU; Microsoft's Ubuntu-HPC 24.04 (NVIDIA datacenter driver + CUDA preinstalled, so
# no reboot during boot) for NC sizes; NV A10 sizes need NVIDIA's GRID driver: Ubuntu + the NVIDIA driver extension.
IMAGE_CPU = "Canonical:ubuntu-24_04-lts:server:latest"
IMAGE_CUDA = "microsoft-dsvm:ubuntu-hpc:2404:latest"
DRIVER_EXTENSION = "NvidiaGpuDriverLinux"
REGISTRATION_EXTENSION = "cml-action-registration"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
STATE_DIR = "/var/lib/cml-action"
TAG_SPOT = "cml-action-spot"
GROUP_PREFIX = "cml-action-"
_SUBNET_ID = re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+"
                        r"/subnets/[^/]+", re.IGNORECASE)
_IDENTITY_ID = re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/"
                          r"userAssignedIdentities/[^/]+", re.IGNORECASE)

PERMISSIONS = """\
**Launcher** (service principal, or workload identity federation from the CI): on the subscription, `Contributor`
plus `Role Based Access Control Administrator` constrained to assigning `Contributor` (or `User Access
Administrator`), because each runner gets its own resource group and a role assignment on it. A custom role instead:
`Microsoft.Resources/subscriptions/resourceGroups/read|write|delete`, `Microsoft.Resources/subscriptions/locations/read`,
`Microsoft.Compute/virtualMachines/read|write|delete`, `Microsoft.Compute/virtualMachines/instanceView/read`,
`Microsoft.Compute/virtualMachines/extensions/read|write|delete`, `Microsoft.Compute/disks/delete`,
`Microsoft.Network/virtualNetworks/read|write|delete`, `Microsoft.Network/virtualNetworks/subnets/join/action`,
`Microsoft.Network/networkSecurityGroups/read|write|delete|join/action`,
`Microsoft.Network/networkInterfaces/read|write|delete|join/action`, `Microsoft.DevTestLab/schedules/write`,
`Microsoft.Authorization/roleAssignments/write`, and `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action`
when `cloud-permission-set` names an identity.

**VM**: nothing to create. Its system-assigned identity gets `Contributor` on the runner's own resource group only:
what it needs to delete that group (itself) and its registration extension. `cloud-permission-set` adds a
user-assigned identity (resource id) for what the job itself needs."""

GUARANTEE = ("Each runner has its own resource group. When the VM powers itself off (job done, idle, maximum lifetime, "
             "failed bootstrap) it deletes that group with its managed identity, so nothing stays billed; a spot eviction "
             "deletes the VM, an auto-shutdown schedule stops it at its expiry, and `runner-teardown` / `runner-sweep` "
             "delete any group left behind, including one past its `cml-action-expires` tag.")

# ARM error codes -> (scope, transient): how far a failure reaches and whether retrying later may help
_CAPACITY = {"ZonalAllocationFailed": ("zone", True), "AllocationFailed": ("zone", True),
             "OverconstrainedAllocationRequest": ("zone", True), "OverconstrainedZonalAllocationRequest": ("zone", True),
             "QuotaExceeded": ("region", False)}


def _classify(code: str, message: str) -> tuple[str, bool] | None:
    if code == "SkuNotAvailable":  # zones named: restricted in this zone; otherwise in the whole region
        return ("zone", False) if re.search(r"zones? '", message) else ("type", False)
    if code in _CAPACITY:
        return _CAPACITY[code]
    if code == "OperationNotAllowed" and "quota" in message.lower():
        return "region", False
    if code == "InvalidParameter" and re.search(r"size .* (is )?not (available|supported)", message, re.IGNORECASE):
        return "type", False
    return None


def _error_parts(exc: Exception) -> tuple[str, str]:
    """(code, message) of an ARM error, from the parsed error or, for a failed long-running operation, its body."""
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", "") or "", getattr(error, "message", "") or ""
    if not code:
        response = getattr(exc, "response", None)
        try:
            inner = (response.json() or {}).get("error") or {}
        except Exception:  # noqa: BLE001 - not JSON: fall back to the exception text
            inner = {}
        code, message = inner.get("code", ""), inner.get("message", "")
    lines = (message or str(exc)).strip().splitlines()
    return code, lines[0] if lines else ""


def _throwaway_ssh_key() -> str:
    """Azure refuses a Linux VM without a password or an SSH key; nobody logs in, so the private half is discarded."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


class AzureProvider:
    cloud = "azure"

    def __init__(self, env: Mapping[str, str], region: str) -> None:
        self.region = region
        self._env = dict(env)
        self.endpoint = env.get("CML_AZURE_ENDPOINT", "https://management.azure.com").rstrip("/")
        self.subscription = env.get("AZURE_SUBSCRIPTION_ID", "")
        try:
            self.backoff = float(env.get("CML_RETRY_BACKOFF", "1"))
        except ValueError:
            raise UserError("CML_RETRY_BACKOFF must be a number of seconds") from None
        self._verify: str | bool = env.get("REQUESTS_CA_BUNDLE") or True  # a private CA (tests, proxies)
        self._clients: dict[str, Any] = {}
        self._credential: Any = None

    # --- plumbing ---------------------------------------------------------------------------------
    def _cred(self) -> Any:
        if self._credential is None:
            if not self.subscription:
                raise UserError("AZURE_SUBSCRIPTION_ID is not set")
            authority = self._env.get("AZURE_AUTHORITY_HOST", "")
            extra: dict[str, Any] = {"connection_verify": self._verify}
            if authority:
                extra.update(authority=authority, disable_instance_discovery=True)
            if self._env.get("AZURE_CLIENT_SECRET"):
                from azure.identity import ClientSecretCredential

                self._credential = ClientSecretCredential(self._env.get("AZURE_TENANT_ID", ""),
                                                          self._env.get("AZURE_CLIENT_ID", ""),
                                                          self._env["AZURE_CLIENT_SECRET"], **extra)
            else:
                # workload identity federation (azure/login with OIDC), managed identity, Azure CLI login...
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(**extra)
        return self._credential

    def _client(self, name: str) -> Any:
        if name not in self._clients:
            kwargs = {"base_url": self.endpoint, "credential_scopes": [f"{self.endpoint}/.default"],
                      "connection_verify": self._verify, "retry_total": 6, "retry_backoff_factor": self.backoff,
                      "retry_backoff_max": 60, "polling_interval": self.backoff}
            if name == "resource":
                from azure.mgmt.resource.resources import ResourceManagementClient as cls
            elif name == "network":
                from azure.mgmt.network import NetworkManagementClient as cls
            elif name == "compute":
                from azure.mgmt.compute import ComputeManagementClient as cls
            else:
                from azure.mgmt.authorization import AuthorizationManagementClient as cls
            self._clients[name] = cls(self._cred(), self.subscription, **kwargs)
        return self._clients[name]

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """azure-core retries throttling (429, honouring Retry-After) and 5xx itself, with exponential backoff from
        CML_RETRY_BACKOFF; what is left becomes a CapacityError the orchestrator can act on, or one line."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        try:
            return fn()
        except ResourceNotFoundError:
            raise  # callers decide: "already gone" is fine for delete and state
        except ClientAuthenticationError as exc:
            raise UserError(f"Azure rejected the credentials while trying to {what}: "
                            f"{str(exc).strip().splitlines()[0]}") from None
        except HttpResponseError as exc:
            code, message = _error_parts(exc)
            kind = _classify(code, message)
            if kind is not None:
                raise CapacityError(f"{code}: {message}", kind[0], kind[1], code) from None  # type: ignore[arg-type]
            raise CloudError(f"Azure refused to {what}: {code or exc.status_code} {message}".strip()) from None

    def _get(self, path: str, api_version: str) -> Any:
        from azure.core.rest import HttpRequest

        response = self._client("resource").send_request(HttpRequest("GET", f"{self.endpoint}{path}",
                                                                     params={"api-version": api_version}))
        response.raise_for_status()
        return response.json()

    # --- catalogue --------------------------------------------------------------------------------
    def zones(self, region: str) -> list[str]:
        """The region's availability zones for this subscription; [""] for a region without zones (regional VMs)."""
        listing = self._call("list the regions", lambda: self._get(f"/subscriptions/{self.subscription}/locations",
                                                                    "2022-12-01"))
        names = []
        for location in listing.get("value", []):
            names.append(location.get("name", ""))
            if location.get("name", "").lower() == region.lower().replace(" ", ""):
                zones = sorted(m["logicalZone"] for m in location.get("availabilityZoneMappings") or [])
                return zones or [""]
        raise UserError(f"--cloud-region {region!r} is not an Azure region of this subscription "
                        f"(e.g. {', '.join(sorted(n for n in names if n)[:6])})")

    def native_type(self, generic: str, gpu: str, gpu_count: int) -> str:
        gpu = (gpu or "none").lower()
        if generic.startswith("Standard_"):
            return generic
        if gpu == "none":
            if generic.lower() not in SIZES:
                raise UserError(f"--cloud-type {generic!r}: use s, m, l, xl or an Azure size (Standard_...)")
            return SIZES[generic.lower()]
        if gpu in _NOT_OFFERED:
            raise UserError(f"--cloud-gpu {gpu}: {_NOT_OFFERED[gpu]}; choose one of {', '.join(GPUS)}")
        if gpu not in _GPU_SIZES:
            raise UserError(f"--cloud-gpu {gpu!r} is not offered on Azure; choose one of {', '.join(GPUS)} "
                            "or give an Azure size (Standard_...) as --cloud-type")
        if gpu_count not in _GPU_SIZES[gpu]:
            raise UserError(f"--cloud-gpu-count {gpu_count} with {gpu}: Azure sizes have "
                            f"{', '.join(map(str, sorted(_GPU_SIZES[gpu])))} GPUs")
        return _GPU_SIZES[gpu][gpu_count]

    # --- snippets ---------------------------------------------------------------------------------
    def secret_snippet(self, spec: MachineSpec) -> str:
        return _VM_SECRET

    def poweroff_snippet(self, spec: MachineSpec) -> str:
        return _VM_POWEROFF

    # --- lifecycle ----------------------------------------------------------------------------------
    def create(self, spec: MachineSpec, placement: Placement) -> Instance:
        group = GROUP_PREFIX + spec.name
        tags = {**spec.tags, TAG_SPOT: "true" if placement.spot else "false"}
        _image(spec.image, placement.machine_type)  # bad options fail before anything exists
        _identity(spec.permission_set)
        if spec.subnet and not _SUBNET_ID.fullmatch(spec.subnet):
            raise UserError("--cloud-subnet for Azure is a subnet resource id: /subscriptions/<id>/resourceGroups/"
                            "<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>")
        try:
            return self._create(spec, placement, group, tags)
        except BaseException as exc:
            try:
                self._delete_group(group)
            except Exception as cleanup:  # noqa: BLE001 - the original failure matters; the launcher cleans up by tag
                exc.add_note(f"cleanup: delete the resource group {group}: {one_line(cleanup)}")
            raise

    def _create(self, spec: MachineSpec, placement: Placement, group: str, tags: dict[str, str]) -> Instance:
        resource, network, compute = self._client("resource"), self._client("network"), self._client("compute")
        loc = spec.region or self.region
        size = placement.machine_type
        grid = spec.image == "" and bool(re.match(r"Standard_NV\d+ads_A10_v5$", size))
        self._call("create the resource group", lambda: resource.resource_groups.create_or_update(
            group, {"location": loc, "tags": tags}))
        # request bodies are the REST representation: azure-mgmt sends a plain dict as it is
        nsg = self._call("create the network security group", lambda: network.network_security_groups.begin_create_or_update(
            group, f"{spec.name}-nsg", {"location": loc, "tags": tags, "properties": {"securityRules": []}}).result())
        subnet = spec.subnet
        if not subnet:
            vnet = self._call("create the virtual network", lambda: network.virtual_networks.begin_create_or_update(
                group, f"{spec.name}-vnet", {"location": loc, "tags": tags, "properties": {
                    "addressSpace": {"addressPrefixes": ["10.42.0.0/24"]},
                    "subnets": [{"name": "runner", "properties": {"addressPrefix": "10.42.0.0/24",
                                                                  "defaultOutboundAccess": True}}]}}).result())
            subnet = vnet.subnets[0].id
        nic = self._call("create the network interface", lambda: network.network_interfaces.begin_create_or_update(
            group, f"{spec.name}-nic", {"location": loc, "tags": tags, "properties": {
                "networkSecurityGroup": {"id": nsg.id},
                "ipConfigurations": [{"name": "ipconfig", "properties": {"subnet": {"id": subnet},
                                                                         "privateIPAllocationMethod": "Dynamic"}}]}}).result())
        vm = self._vm_body(spec, placement, loc, tags, nic.id, grid)
        try:
            created = self._call("create the VM", lambda: compute.virtual_machines.begin_create_or_update(
                group, spec.name, vm).result())
        except CloudError as exc:
            if "encryptionAtHost" not in str(exc):
                raise
            vm["properties"].pop("securityProfile")  # the subscription has not registered EncryptionAtHost
            created = self._call("create the VM", lambda: compute.virtual_machines.begin_create_or_update(
                group, spec.name, vm).result())
        self._let_vm_delete_its_group(group, created.identity.principal_id)
        self._schedule_shutdown(group, spec, loc, tags, created.id)
        extension: dict[str, Any] = {"location": loc, "tags": tags, "properties": {
            "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1",
            "autoUpgradeMinorVersion": True, "protectedSettings": {"script": _script(_writer(spec.secret, grid))}}}
        if grid:
            self._call("install the NVIDIA GRID driver", lambda: compute.virtual_machine_extensions.begin_create_or_update(
                group, spec.name, DRIVER_EXTENSION, {"location": loc, "tags": tags, "properties": {
                    "publisher": "Microsoft.HpcCompute", "type": DRIVER_EXTENSION, "typeHandlerVersion": "1.6",
                    "autoUpgradeMinorVersion": True}}).result())
            extension["properties"]["provisionAfterExtensions"] = [DRIVER_EXTENSION]
        self._call("hand the registration over", lambda: compute.virtual_machine_extensions.begin_create_or_update(
            group, spec.name, REGISTRATION_EXTENSION, extension).result())
        return Instance(group, spec.name, placement.zone, "pending", tags, datetime.now(timezone.utc))

    def _vm_body(self, spec: MachineSpec, placement: Placement, loc: str, tags: dict[str, str], nic: str,
                 grid: bool) -> dict[str, Any]:
        size = placement.machine_type
        premium = bool(re.match(r"Standard_[A-Z]+\d+[a-z]*s[a-z]*_", size))  # sizes with premium storage have an "s"
        script = _deferred(spec.startup_script) if grid else spec.startup_script
        image, identity = _image(spec.image, size), _identity(spec.permission_set)
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {"imageReference": image, "osDisk": {
                "createOption": "FromImage", "deleteOption": "Delete", "diskSizeGB": spec.disk_gb,
                "managedDisk": {"storageAccountType": "Premium_LRS" if premium else "StandardSSD_LRS"}}},
            "osProfile": {"computerName": spec.name[:64], "adminUsername": "cmlrunner",
                          "customData": base64.b64encode(script.encode()).decode(),
                          "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True,
                                                 "ssh": {"publicKeys": [{
                                                     "path": "/home/cmlrunner/.ssh/authorized_keys",
                                                     "keyData": _throwaway_ssh_key()}]}}},
            "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": True,
                                                                                "deleteOption": "Delete"}}]},
            "securityProfile": {"encryptionAtHost": True},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},  # managed storage: the serial log
        }
        if placement.spot:
            props.update({"priority": "Spot", "evictionPolicy": "Delete", "billingProfile": {"maxPrice": -1}})
        body: dict[str, Any] = {"location": loc, "tags": tags, "identity": identity, "properties": props}
        if placement.zone:
            body["zones"] = [placement.zone]
        return body

    def _let_vm_delete_its_group(self, group: str, principal: str) -> None:
        """A fresh identity takes a while to reach every Entra ID replica: PrincipalNotFound is retried."""
        scope = f"/subscriptions/{self.subscription}/resourceGroups/{group}"
        body = {"properties": {
            "roleDefinitionId": f"/subscriptions/{self.subscription}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
            "principalId": principal, "principalType": "ServicePrincipal"}}
        client = self._client("authorization")
        for attempt in range(6):
            try:
                self._call("let the VM delete its own resource group",
                           lambda: client.role_assignments.create(scope, str(uuid.uuid4()), body))
                return
            except CloudError as exc:
                if "PrincipalNotFound" not in str(exc) or attempt == 5:
                    raise
                time.sleep(self.backoff * 2 ** attempt)

    def _schedule_shutdown(self, group: str, spec: MachineSpec, loc: str, tags: dict[str, str], vm_id: str) -> None:
        """Azure's own clock stops the VM at its expiry. Daily schedules only: skipped for lifetimes of a day or more;
        best effort (the provider may not be registered): the VM's watchdog and runner-sweep remain."""
        if spec.max_lifetime_s >= 23 * 3600:
            return
        at = datetime.now(timezone.utc) + timedelta(seconds=spec.max_lifetime_s + 60)
        rid = (f"/subscriptions/{self.subscription}/resourceGroups/{group}/providers/Microsoft.DevTestLab/schedules/"
               f"shutdown-computevm-{spec.name}")
        body = {"location": loc, "tags": tags, "properties": {
            "status": "Enabled", "taskType": "ComputeVmShutdownTask", "dailyRecurrence": {"time": at.strftime("%H%M")},
            "timeZoneId": "UTC", "notificationSettings": {"status": "Disabled"}, "targetResourceId": vm_id}}
        try:
            self._call("schedule the VM's shutdown", lambda: self._client("resource").resources.begin_create_or_update_by_id(
                rid, api_version="2018-09-15", parameters=body).result())
        except CloudError:
            pass

    def _delete_group(self, group: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._call("delete the resource group", lambda: self._client("resource").resource_groups.begin_delete(
                group).result())
        except ResourceNotFoundError:
            pass

    def find(self, tags: dict[str, str]) -> list[Instance]:
        key, value = next(iter(tags.items())) if tags else (None, None)
        query = f"tagName eq '{key}' and tagValue eq '{value}'" if key else None
        groups = self._call("list resource groups", lambda: list(self._client("resource").resource_groups.list(
            filter=query)))
        found = []
        for group in groups:
            group_tags = dict(group.tags or {})
            if not group.name.startswith(GROUP_PREFIX) or any(group_tags.get(k) != v for k, v in tags.items()):
                continue
            name = group_tags.get(TAG_RUNNER, group.name.removeprefix(GROUP_PREFIX))
            instance = Instance(group.name, name, "", "pending", group_tags, None)
            if (group.properties and group.properties.provisioning_state or "").lower() == "deleting":
                found.append(Instance(group.name, name, "", "terminated", group_tags, None))
                continue
            try:
                found.append(self.state(instance))
            except Exception:  # noqa: BLE001 - the group is listed either way: teardown and sweep must see it
                found.append(instance)  # state unknown ("pending"); the caller reads it again if it needs to
        return found

    def state(self, instance: Instance) -> Instance:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            view = self._call("read the VM", lambda: self._client("compute").virtual_machines.instance_view(
                instance.id, instance.name))
        except ResourceNotFoundError:
            return self._without_vm(instance)
        codes = [s.code for s in (view.statuses or []) if s.code]
        if any(c.lower() == "provisioningstate/failed" for c in codes):
            return Instance(instance.id, instance.name, instance.zone, "missing", instance.tags, instance.created_at)
        power = next((c.split("/", 1)[1] for c in reversed(codes) if c.startswith("PowerState/")), "starting")
        state = {"starting": "pending", "running": "running", "stopping": "stopping", "stopped": "stopped",
                 "deallocating": "stopping", "deallocated": "stopped"}.get(power, "pending")
        return Instance(instance.id, instance.name, instance.zone, state, instance.tags, instance.created_at)

    def _without_vm(self, instance: Instance) -> Instance:
        """No VM. Group gone or going: the power-off (or a teardown) did its job. Group still there: leftovers of a
        failed launch, or a spot VM Azure evicted (eviction policy Delete removes the VM, not its group)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            group = self._call("read the resource group", lambda: self._client("resource").resource_groups.get(
                instance.id))
        except ResourceNotFoundError:
            return Instance(instance.id, instance.name, instance.zone, "terminated", instance.tags, instance.created_at)
        if (group.properties and group.properties.provisioning_state or "").lower() == "deleting":
            return Instance(instance.id, instance.name, instance.zone, "terminated", instance.tags, instance.created_at)
        spot = instance.tags.get(TAG_SPOT) == "true"
        return Instance(instance.id, instance.name, instance.zone, "missing", instance.tags, instance.created_at,
                        preempted=spot)

    def delete(self, instance: Instance) -> None:
        self._delete_group(instance.id)


def from_env(env: Mapping[str, str], region: str) -> AzureProvider:
    return AzureProvider(env, region)


def _image(image: str, size: str) -> dict[str, str]:
    text = image or (IMAGE_CUDA if re.match(r"Standard_N[CD]", size) else IMAGE_CPU)
    parts = text.split(":")
    if text.startswith("/subscriptions/"):
        return {"id": text}
    if len(parts) == 4 and all(parts):
        return dict(zip(("publisher", "offer", "sku", "version"), parts))
    raise UserError("--cloud-image for Azure: an image URN publisher:offer:sku:version or an image resource id")


def _identity(permission_set: str) -> dict[str, Any]:
    """The system-assigned identity deletes the runner's group; a user-assigned one (cloud-permission-set) is the job's."""
    if not permission_set:
        return {"type": "SystemAssigned"}
    if not _IDENTITY_ID.fullmatch(permission_set):
        raise UserError("--cloud-permission-set for Azure is a user-assigned managed identity resource id")
    return {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {permission_set: {}}}


def _script(text: str) -> str:
    """CustomScript's `script` setting: the extension writes it to a root-only file and runs it, so the registration is
    never a process's command line (as `commandToExecute` would be: `/bin/sh -c <command>`)."""
    return base64.b64encode(f"#!/bin/sh\n{text}\n".encode()).decode()


def _writer(secret: str, start_bootstrap: bool) -> str:
    """The registration extension's script (/bin/sh, as root, on the VM): write the secret for the bootstrap, where
    only root reads it, atomically; for GRID sizes also start the bootstrap, now that the driver is in."""
    command = (f'd="${{CML_AZURE_STATE_DIR:-{STATE_DIR}}}" && install -d -m 700 "$d" && umask 077 && '
               f'printf %s {shlex.quote(secret)} > "$d/registration.tmp" && mv "$d/registration.tmp" "$d/registration"')
    if start_bootstrap:
        command += (' && i=0 && while [ ! -s "$d/bootstrap.sh" ] && [ $i -lt 120 ]; do sleep 5; i=$((i+1)); done'
                    ' && systemd-run --unit=cml-action-bootstrap --collect /bin/bash "$d/bootstrap.sh"')
    return command


def _deferred(script: str) -> str:
    """Custom data for sizes whose driver extension may reboot the VM mid-boot: store the bootstrap (cloud-init runs
    custom data once, a reboot would kill it half-way); the registration extension, ordered after the driver
    extension, starts it."""
    end = "CML_ACTION_BOOTSTRAP_" + uuid.uuid4().hex
    return (f'#!/bin/bash\n# cml-action: started by the registration extension once the NVIDIA driver is installed\n'
            f'd="${{CML_AZURE_STATE_DIR:-{STATE_DIR}}}"\ninstall -d -m 700 "$d"\n'
            f"cat > \"$d/bootstrap.sh.tmp\" <<'{end}'\n{script.rstrip()}\n{end}\n"
            f'chmod 700 "$d/bootstrap.sh.tmp"\nmv "$d/bootstrap.sh.tmp" "$d/bootstrap.sh"\n')


# Shared by both VM-side snippets: an ARM token of the VM's identity and where the VM lives, from IMDS.
_VM_IMDS = r'''imds=${CML_AZURE_IMDS:-http://169.254.169.254}
arm=${CML_AZURE_ARM:-https://management.azure.com}
token=$(curl -fsS -m 10 -H 'Metadata: true' "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$arm/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || token=
where=$(curl -fsS -m 10 -H 'Metadata: true' "$imds/metadata/instance/compute?api-version=2021-02-01" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["subscriptionId"] + "/resourceGroups/" + c["resourceGroupName"] + " " + c["name"])') || where='''

# Runs on the VM (bash, as root) inside the bootstrap: print the registration, shred it, then remove the extension
# that carried it so Azure drops the protected settings too (best effort: the secret is single-use).
_VM_SECRET = rf'''state_dir=${{CML_AZURE_STATE_DIR:-{STATE_DIR}}}
for _ in $(seq 1 180); do [ -s "$state_dir/registration" ] && break; sleep 5; done
cat "$state_dir/registration"
shred -u "$state_dir/registration" 2>/dev/null || rm -f "$state_dir/registration"
{{
{_VM_IMDS}
if [ -n "$token" ] && [ -n "$where" ]; then
  curl -fsS -m 30 -o /dev/null -X DELETE -H "Authorization: Bearer $token" "$arm/subscriptions/${{where% *}}/providers/Microsoft.Compute/virtualMachines/${{where#* }}/extensions/{REGISTRATION_EXTENSION}?api-version=2024-07-01" || true
fi
}} >/dev/null 2>&1 || true'''

# Runs on the VM (bash, as root): the VM's managed identity deletes the VM's own resource group (everything in it),
# retried while the role assignment propagates; a plain shutdown is the last resort (sweep deletes the rest).
_VM_POWEROFF = rf'''for _ in 1 2 3 4 5 6; do
{_VM_IMDS}
  if [ -n "$token" ] && [ -n "$where" ] && curl -fsS -m 30 -o /dev/null -X DELETE -H "Authorization: Bearer $token" "$arm/subscriptions/${{where% *}}?api-version=2025-04-01"; then
    break
  fi
  sleep 10
done
shutdown -h now'''
