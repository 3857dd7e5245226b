"""Azure through azure-mgmt-compute / -network / -resource / -authorization and azure-identity, imported lazily.

Guarantee: a guest shutdown leaves an Azure VM stopped but still billed (disk, IP), so every runner lives in
its own resource group, and power-off deletes that whole group: the VM has a system-assigned managed identity
with Contributor on its own group only, and its power-off asks ARM to delete the group (then shuts down as a
last resort). Spot VMs use eviction policy Delete; OS disk and NIC have deleteOption Delete. Deleting the group
removes everything created for the runner: VM, disk, NIC, public IP, NSG, VNet, extensions.

Secret hand-over: not custom data (kept by Azure and readable on the VM by any process through IMDS). The
registration goes in the `protectedSettings` of a CustomScript extension: encrypted to the VM's certificate,
never returned by the API; the extension writes it to a root-only file, which the bootstrap reads and shreds.

Network: a VNet and an NSG of the runner's own (no inbound rule: Azure's defaults deny inbound from the Internet)
and a Standard public IP for outbound HTTPS (new subnets no longer get default outbound access). With
`cloud-subnet`, the NIC joins that subnet without a public IP.
"""

from __future__ import annotations

import base64
import os
import shlex
import time
import uuid
from typing import Any, Callable, Mapping, TypeVar

from cml_action.clouds.base import TAG_LABEL, TAG_RUNNER, CapacityError, Instance, MachineSpec, Placement
from cml_action.errors import CloudError, UserError

T = TypeVar("T")

SIZES = {"s": "Standard_D2s_v5", "m": "Standard_D8s_v5", "l": "Standard_D16s_v5", "xl": "Standard_D32s_v5"}
GPUS = {"t4": "Standard_NC4as_T4_v3", "a10g": "Standard_NV36ads_A10_v5 (A10)", "a100": "Standard_NC24ads_A100_v4",
        "h100": "Standard_NC40ads_H100_v5"}
_GPU_SIZES = {
    "t4": {1: "Standard_NC4as_T4_v3", 4: "Standard_NC64as_T4_v3"},
    "a10g": {1: "Standard_NV36ads_A10_v5", 2: "Standard_NV72ads_A10_v5"},
    "a100": {1: "Standard_NC24ads_A100_v4", 2: "Standard_NC48ads_A100_v4", 4: "Standard_NC96ads_A100_v4"},
    "h100": {1: "Standard_NC40ads_H100_v5", 2: "Standard_NC80adis_H100_v5"},
}
IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
SECRET_FILE = "/var/lib/cml-action/registration"
TAG_SPOT = "cml-action-spot"

CAPACITY = {"SkuNotAvailable": ("zone", False), "ZonalAllocationFailed": ("zone", True),
            "AllocationFailed": ("zone", True), "OverconstrainedAllocationRequest": ("zone", True),
            "OverconstrainedZonalAllocationRequest": ("zone", True), "SpotAllocationFailed": ("zone", True),
            "QuotaExceeded": ("region", False), "InvalidTemplateDeployment": ("type", False)}

PERMISSIONS = """\
**Launcher** (a service principal or workload identity federation): `Contributor` and `User Access Administrator`
on the subscription (or one custom role with `Microsoft.Resources/subscriptions/resourceGroups/*`,
`Microsoft.Compute/virtualMachines/*`, `Microsoft.Compute/virtualMachines/extensions/*`, `Microsoft.Network/*/write|read|delete`
for virtualNetworks, networkSecurityGroups, publicIPAddresses, networkInterfaces, and
`Microsoft.Authorization/roleAssignments/write`), because each runner gets its own resource group and a role
assignment on it.
**VM**: nothing to configure: its system-assigned identity gets `Contributor` on its own resource group only,
which is exactly what it needs to delete itself."""

GUARANTEE = ("Each runner has its own resource group. When the VM powers itself off (job done, idle, max lifetime) it "
             "deletes that group through its managed identity, so nothing stays billed; spot evictions delete the VM; "
             "`runner-sweep` deletes any group past its `cml-action-expires` tag.")


def _backoff() -> float:
    try:
        return float(os.environ.get("CML_RETRY_BACKOFF", "1"))
    except ValueError:
        return 1.0


def _error_code(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", "") or ""
    details = getattr(error, "details", None) or []
    inner = [getattr(d, "code", "") for d in details]
    return " ".join(c for c in [code, *inner] if c)


class AzureProvider:
    cloud = "azure"

    def __init__(self, env: Mapping[str, str], region: str) -> None:
        self.region = region
        self._env = env
        self.endpoint = env.get("CML_AZURE_ENDPOINT", "https://management.azure.com").rstrip("/")
        self.subscription = env.get("AZURE_SUBSCRIPTION_ID", "")
        self._clients: dict[str, Any] = {}
        self._credential: Any = None

    # --- plumbing ---------------------------------------------------------------------------------
    def _cred(self) -> Any:
        if self._credential is None:
            if not self.subscription:
                raise UserError("AZURE_SUBSCRIPTION_ID is not set")
            if self._env.get("AZURE_CLIENT_SECRET"):
                from azure.identity import ClientSecretCredential

                authority = self._env.get("AZURE_AUTHORITY_HOST", "")
                self._credential = ClientSecretCredential(
                    self._env.get("AZURE_TENANT_ID", ""), self._env.get("AZURE_CLIENT_ID", ""),
                    self._env["AZURE_CLIENT_SECRET"], **({"authority": authority, "disable_instance_discovery": True}
                                                         if authority else {}))
            else:
                from azure.identity import DefaultAzureCredential  # OIDC federation in Actions, managed identity...

                self._credential = DefaultAzureCredential()
        return self._credential

    def _client(self, name: str) -> Any:
        if name not in self._clients:
            kwargs = {"base_url": self.endpoint, "credential_scopes": [f"{self.endpoint}/.default"],
                      "retry_total": 5, "retry_backoff_factor": _backoff(), "polling_interval": _backoff()}
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
        """azure-core retries throttling (429 with Retry-After) and 5xx itself; errors become one line."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        try:
            return fn()
        except ResourceNotFoundError:
            raise  # callers decide: "already gone" is fine for delete and state
        except ClientAuthenticationError as exc:
            raise UserError(f"Azure rejected the credentials while trying to {what}: {str(exc).splitlines()[0]}") from None
        except HttpResponseError as exc:
            code = _error_code(exc)
            for known, (scope, transient) in CAPACITY.items():
                if known in code or (known == "QuotaExceeded" and "quota" in str(exc).lower()):
                    message = str(getattr(exc.error, "message", "") or exc).splitlines()[0]
                    raise CapacityError(f"{known}: {message}", scope, transient, known) from None  # type: ignore[arg-type]
            raise CloudError(f"Azure refused to {what}: {code or exc.status_code} "
                             f"{getattr(exc.error, 'message', '') if exc.error else ''}".strip()) from None

    # --- catalogue --------------------------------------------------------------------------------
    def zones(self, region: str) -> list[str]:
        return ["1", "2", "3"]

    def native_type(self, generic: str, gpu: str, gpu_count: int) -> str:
        if gpu in ("", "none"):
            return SIZES.get(generic.lower(), generic)
        if gpu == "v100":
            raise UserError("--cloud-gpu v100: Azure retired its V100 sizes (NCv3); choose t4, a10g, a100 or h100")
        if gpu not in _GPU_SIZES:
            if gpu.startswith("Standard_"):
                return gpu
            raise UserError(f"--cloud-gpu {gpu!r} is not offered on Azure here; choose one of {', '.join(GPUS)}")
        if generic.startswith("Standard_"):
            return generic
        if gpu_count not in _GPU_SIZES[gpu]:
            raise UserError(f"--cloud-gpu-count {gpu_count} with {gpu}: Azure offers {sorted(_GPU_SIZES[gpu])}")
        return _GPU_SIZES[gpu][gpu_count]

    # --- snippets ---------------------------------------------------------------------------------
    def secret_snippet(self, spec: MachineSpec) -> str:
        return f'''file={SECRET_FILE}
for _ in $(seq 1 180); do [ -s "$file" ] && break; sleep 5; done
cat "$file"
shred -u "$file" 2>/dev/null || rm -f "$file"'''

    def poweroff_snippet(self, spec: MachineSpec) -> str:
        return _VM_POWEROFF

    # --- lifecycle ----------------------------------------------------------------------------------
    def _group(self, name: str) -> str:
        return f"cml-action-{name}"

    def create(self, spec: MachineSpec, placement: Placement) -> Instance:
        group = self._group(spec.name)
        tags = {**spec.tags, TAG_SPOT: "true" if placement.spot else "false"}
        try:
            return self._create(spec, placement, group, tags)
        except BaseException:
            self._delete_group(group)
            raise

    def _create(self, spec: MachineSpec, placement: Placement, group: str, tags: dict[str, str]) -> Instance:
        resource, network, compute = self._client("resource"), self._client("network"), self._client("compute")
        loc = self.region
        self._call("create the resource group", lambda: resource.resource_groups.create_or_update(
            group, {"location": loc, "tags": tags}))
        # request bodies are the REST representation (azure-mgmt sends a plain dict as it is)
        nsg = self._call("create the network security group", lambda: network.network_security_groups.begin_create_or_update(
            group, f"{spec.name}-nsg", {"location": loc, "tags": tags, "properties": {"securityRules": []}}).result())
        ip_config: dict[str, Any] = {"name": "ipconfig", "properties": {}}
        if spec.subnet:
            ip_config["properties"]["subnet"] = {"id": spec.subnet}
        else:
            vnet = self._call("create the virtual network", lambda: network.virtual_networks.begin_create_or_update(
                group, f"{spec.name}-vnet", {"location": loc, "tags": tags, "properties": {
                    "addressSpace": {"addressPrefixes": ["10.42.0.0/24"]},
                    "subnets": [{"name": "runner", "properties": {"addressPrefix": "10.42.0.0/24"}}]}}).result())
            ip_body: dict[str, Any] = {"location": loc, "tags": tags, "sku": {"name": "Standard"},
                                       "properties": {"publicIPAllocationMethod": "Static"}}
            if placement.zone:
                ip_body["zones"] = [placement.zone]
            public_ip = self._call("create the outbound public IP", lambda: network.public_ip_addresses.begin_create_or_update(
                group, f"{spec.name}-ip", ip_body).result())
            ip_config["properties"]["subnet"] = {"id": vnet.subnets[0].id}
            ip_config["properties"]["publicIPAddress"] = {"id": public_ip.id, "properties": {"deleteOption": "Delete"}}
        nic = self._call("create the network interface", lambda: network.network_interfaces.begin_create_or_update(
            group, f"{spec.name}-nic", {"location": loc, "tags": tags, "properties": {
                "ipConfigurations": [ip_config], "networkSecurityGroup": {"id": nsg.id}}}).result())
        image: dict[str, str] = dict(IMAGE)
        if spec.image:
            parts = spec.image.split(":")
            image = {"id": spec.image} if len(parts) != 4 else dict(zip(("publisher", "offer", "sku", "version"), parts))
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": placement.machine_type},
            "storageProfile": {"imageReference": image, "osDisk": {
                "createOption": "FromImage", "deleteOption": "Delete", "diskSizeGB": spec.disk_gb,
                "managedDisk": {"storageAccountType": "Premium_LRS"}}},
            "osProfile": {"computerName": spec.name[:64], "adminUsername": "cmlrunner",
                          "customData": base64.b64encode(spec.startup_script.encode()).decode(),
                          "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": []},
                                                 "provisionVMAgent": True}},
            "networkProfile": {"networkInterfaces": [{"id": nic.id, "properties": {"primary": True,
                                                                                    "deleteOption": "Delete"}}]},
        }
        if placement.spot:
            props.update({"priority": "Spot", "evictionPolicy": "Delete", "billingProfile": {"maxPrice": -1}})
        vm: dict[str, Any] = {"location": loc, "tags": tags, "identity": {"type": "SystemAssigned"}, "properties": props}
        if placement.zone:
            vm["zones"] = [placement.zone]
        created = self._call("create the VM", lambda: compute.virtual_machines.begin_create_or_update(
            group, spec.name, vm).result())
        principal = created.identity.principal_id
        scope = f"/subscriptions/{self.subscription}/resourceGroups/{group}"
        self._call("let the VM delete its own resource group", lambda: self._client("authorization").role_assignments.create(
            scope, str(uuid.uuid4()), {"properties": {
                "roleDefinitionId": f"/subscriptions/{self.subscription}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
                "principalId": principal, "principalType": "ServicePrincipal"}}))
        writer = f"install -d -m 700 {os.path.dirname(SECRET_FILE)} && umask 077 && printf %s {shlex.quote(spec.secret)} > {SECRET_FILE}"
        self._call("hand the registration over", lambda: compute.virtual_machine_extensions.begin_create_or_update(
            group, spec.name, "cml-action-registration", {"location": loc, "properties": {
                "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1",
                "autoUpgradeMinorVersion": True, "protectedSettings": {"commandToExecute": writer}}}).result())
        if spec.gpu not in ("", "none"):
            self._call("install the NVIDIA driver", lambda: compute.virtual_machine_extensions.begin_create_or_update(
                group, spec.name, "NvidiaGpuDriverLinux", {"location": loc, "properties": {
                    "publisher": "Microsoft.HpcCompute", "type": "NvidiaGpuDriverLinux", "typeHandlerVersion": "1.9",
                    "autoUpgradeMinorVersion": True}}))
        return Instance(group, spec.name, placement.zone, "pending", tags, None)

    def _delete_group(self, group: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._call("delete the resource group", lambda: self._client("resource").resource_groups.begin_delete(
                group).result())
        except ResourceNotFoundError:
            pass
        except CloudError as exc:
            if "ResourceGroupNotFound" not in str(exc):
                raise

    def find(self, tags: dict[str, str]) -> list[Instance]:
        key, value = next(iter(tags.items())) if tags else (TAG_LABEL, "")
        query = f"tagName eq '{key}' and tagValue eq '{value}'" if tags else None
        groups = self._call("list resource groups", lambda: list(self._client("resource").resource_groups.list(filter=query)))
        found = []
        for group in groups:
            group_tags = dict(group.tags or {})
            if not group.name.startswith("cml-action-") or any(group_tags.get(k) != v for k, v in tags.items()):
                continue
            name = group_tags.get(TAG_RUNNER, group.name.removeprefix("cml-action-"))
            found.append(self.state(Instance(group.name, name, "", "pending", group_tags, None)))
        return found

    def state(self, instance: Instance) -> Instance:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            view = self._call("read the VM", lambda: self._client("compute").virtual_machines.instance_view(
                instance.id, instance.name))
        except ResourceNotFoundError:
            # our power-off deletes the whole group; a group whose spot VM vanished was evicted by Azure
            spot = instance.tags.get(TAG_SPOT) == "true"
            return Instance(instance.id, instance.name, instance.zone, "missing", instance.tags, instance.created_at,
                            preempted=spot)
        codes = [s.code for s in (view.statuses or []) if s.code and s.code.startswith("PowerState/")]
        power = codes[-1].split("/", 1)[1] if codes else "starting"
        state = {"starting": "pending", "running": "running", "stopping": "stopping", "stopped": "stopped",
                 "deallocating": "stopping", "deallocated": "stopped"}.get(power, "pending")
        return Instance(instance.id, instance.name, instance.zone, state, instance.tags, instance.created_at)

    def delete(self, instance: Instance) -> None:
        self._delete_group(instance.id)


def from_env(env: Mapping[str, str], region: str) -> AzureProvider:
    return AzureProvider(env, region)


# Runs on the VM (bash, as root): the VM's managed identity deletes the VM's own resource group.
_VM_POWEROFF = r'''imds=${CML_AZURE_IMDS:-http://169.254.169.254}
arm=${CML_AZURE_ARM:-https://management.azure.com}
token=$(curl -fsS -H 'Metadata: true' "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$arm/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || token=
where=$(curl -fsS -H 'Metadata: true' "$imds/metadata/instance/compute?api-version=2021-02-01" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["subscriptionId"] + "/resourceGroups/" + c["resourceGroupName"])') || where=
if [ -n "$token" ] && [ -n "$where" ]; then
  curl -fsS -X DELETE -H "Authorization: Bearer $token" "$arm/subscriptions/$where?api-version=2021-04-01" >/dev/null || true
fi
shutdown -h now'''
