"""Azure Resource Manager as far as cml-action uses it, plus the identity platform's token endpoint and IMDS.

Behaves as ARM does where it matters to a launcher: every request carries an api-version the published description
knows and a bearer token; bodies are checked against shapes.py; creations are long-running (201 + Azure-AsyncOperation,
polled), allocation failures surface through the failed operation and leave a VM in state Failed behind, quota and
SKU refusals come synchronously; deleting a resource group is long-running (202 + Location) and takes everything in
it. The VM's managed identity (token from IMDS) may only touch resource groups where a role assignment names it.
"""

from __future__ import annotations

import itertools
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from standins.arm.shapes import API_VERSIONS, namespace, problems
from standins.server import Request, Response, SpecViolation, StandIn

TOKEN = "eyJ.arm-standin-token"
VM_TOKEN_PREFIX = "eyJ.vm-identity."
SUB = "00000000-1111-2222-3333-444444444444"
TENANT = "tenant-standin"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
LOCATIONS = {"westeurope": ["1", "2", "3"], "northcentralus": []}  # the second has no availability zones
SYNC_CODES = {"SkuNotAvailable": 409, "OperationNotAllowed": 409, "QuotaExceeded": 409, "InvalidParameter": 400}
NETWORK_KINDS = {"networkSecurityGroups": "networkSecurityGroup", "virtualNetworks": "virtualNetwork",
                 "publicIPAddresses": "publicIPAddress", "networkInterfaces": "networkInterface"}


@dataclass
class Fault:
    code: str
    message: str
    zone: str | None
    times: int


@dataclass
class Operation:
    polls_left: int
    error: dict | None = None
    done: Callable[[], None] | None = None


@dataclass
class Group:
    name: str
    location: str
    tags: dict[str, str]
    resources: dict[str, dict] = field(default_factory=dict)  # "kind/name" -> resource JSON (keys with _ are private)
    deleting_since: float | None = None


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}})


class ArmStandIn(StandIn):
    delete_seconds = 0.2  # a resource group deletion takes this long unless its operation is polled to the end

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, Group] = {}
        self.vm_faults: list[Fault] = []
        self.operations: dict[str, Operation] = {}
        self.encryption_at_host_registered = True
        self.principal_not_found = 0  # the next N role assignments fail as Entra replication lag makes them fail
        self.vm = {"group": "", "name": ""}  # the VM whose IMDS answers (the one a snippet "runs on")
        self._ids = itertools.count(1)
        self._setup()

    # --- configuration -------------------------------------------------------------------------------
    def fail_vm(self, code: str, message: str, zone: str | None = None, times: int = 1) -> None:
        """The next VM creations (in `zone`, or anywhere) fail with `code`: synchronously for SKU/quota refusals,
        through the failed long-running operation for allocation failures, as ARM reports them."""
        with self.lock:
            self.vm_faults.append(Fault(code, message, zone, times))

    # --- plumbing ------------------------------------------------------------------------------------
    def start(self, tls: tuple[str, str] | None = None) -> ArmStandIn:
        super().start(tls)
        assert self._server is not None
        # connections inherit this: headers and body leave at once instead of waiting out a delayed ACK per request
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.settle()
        return super().dispatch(request)

    def settle(self) -> None:
        """Finish resource group deletions whose time has come."""
        now = time.monotonic()
        for key, group in list(self.groups.items()):
            if group.deleting_since is not None and now - group.deleting_since >= self.delete_seconds:
                del self.groups[key]

    def authenticate(self, request: Request) -> Response | None:
        if not request.path.lower().startswith("/subscriptions/"):
            return None
        header = request.headers.get("authorization", "")
        if header == f"Bearer {TOKEN}":
            return None
        if header.startswith(f"Bearer {VM_TOKEN_PREFIX}"):
            principal = header.removeprefix(f"Bearer {VM_TOKEN_PREFIX}")
            match = re.match(r"(?i)/subscriptions/[^/]+/resourcegroups/([^/]+)", request.path)
            group = self.groups.get(match.group(1).lower()) if match else None
            if group is not None and any(r.get("properties", {}).get("principalId") == principal
                                         for k, r in group.resources.items() if k.startswith("roleAssignments/")):
                return None
            return _error(403, "AuthorizationFailed", f"The client '{principal}' does not have authorization to "
                          f"perform action on scope '{request.path}' or the scope is invalid.")
        return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")

    def check(self, request: Request, handler: Callable, groups: dict[str, str]) -> None:
        if not request.path.lower().startswith("/subscriptions/"):
            return
        version = request.arg("api-version")
        if not version:
            raise SpecViolation("ARM requests need an api-version query parameter")
        ns = namespace(request.path)
        if ns in API_VERSIONS and version not in API_VERSIONS[ns]:
            raise SpecViolation(f"api-version {version} is not a published version of {ns}")
        if request.method in ("PUT", "PATCH", "POST") and request.body and \
                "application/json" not in request.headers.get("content-type", ""):
            raise SpecViolation("ARM request bodies are JSON (Content-Type: application/json)")

    def _validate(self, kind: str, body: Any) -> None:
        found = problems(kind, body)
        if found:
            raise SpecViolation("; ".join(found))
        for key, value in ((body or {}).get("tags") or {}).items():
            if len(key) > 512 or len(str(value)) > 256 or re.search(r"[<>%&\\?/]", key):
                raise SpecViolation(f"tag {key!r}: names up to 512 characters without <>%&\\?/, values up to 256")

    def _id(self, group: str, provider: str, kind: str, name: str) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{provider}/{kind}/{name}"

    def _async(self, request: Request, ns: str, location: str, resource: dict, error: dict | None = None,
               status: int = 201) -> Response:
        """Answer a creation as ARM does: provisioning, with an operation to poll."""
        op = uuid.uuid4().hex
        resource["properties"]["provisioningState"] = "Creating"

        def done() -> None:
            resource["properties"]["provisioningState"] = "Failed" if error else "Succeeded"

        self.operations[op] = Operation(polls_left=1, error=error, done=done)
        version = request.arg("api-version")
        url = f"{self.url}/subscriptions/{SUB}/providers/{ns}/locations/{location}/operations/{op}?api-version={version}"
        return Response(status, self._public(resource), {"Azure-AsyncOperation": url, "Retry-After": "0"})

    @staticmethod
    def _public(resource: dict) -> dict:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    def _owner(self, group: str) -> Group | Response:
        found = self.groups.get(group.lower())
        if found is None:
            return _error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        if found.deleting_since is not None:
            return _error(409, "ResourceGroupBeingDeleted",
                          f"The resource group '{found.name}' is in deprovisioning state and cannot perform this operation.")
        return found

    def _setup(self) -> None:
        self.route("GET", rf"/{TENANT}/v2\.0/\.well-known/openid-configuration", self._openid)
        self.route("POST", rf"/{TENANT}/oauth2/v2\.0/token", self._token)
        s = r"(?i)/subscriptions/(?P<sub>[^/]+)"
        g = s + r"/resourcegroups/(?P<group>[^/]+)"
        self.route("GET", s + r"/locations", self._locations)
        self.route("GET", s + r"/providers/(?P<ns>[^/]+)/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)",
                   self._operation)
        self.route("GET", s + r"/operationresults/(?P<op>[^/]+)", self._group_deletion)
        self.route("PUT", g, self._put_group)
        self.route("GET", g, self._get_group)
        self.route("DELETE", g, self._delete_group)
        self.route("GET", s + r"/resourcegroups", self._list_groups)
        net = g + r"/providers/Microsoft\.Network/(?P<kind>" + "|".join(NETWORK_KINDS) + r")/(?P<name>[^/]+)"
        self.route("PUT", net, self._put_network)
        self.route("GET", net, self._get_resource)
        vm = g + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)"
        self.route("PUT", vm, self._put_vm)
        self.route("GET", vm, self._get_vm)
        self.route("GET", vm + r"/instanceView", self._instance_view)
        ext = vm + r"/extensions/(?P<ext>[^/]+)"
        self.route("PUT", ext, self._put_extension)
        self.route("GET", ext, self._get_extension)
        self.route("DELETE", ext, self._delete_extension)
        self.route("PUT", g + r"/providers/Microsoft\.Authorization/roleAssignments/(?P<rid>[^/]+)", self._put_role)
        sched = g + r"/providers/Microsoft\.DevTestLab/schedules/(?P<name>[^/]+)"
        self.route("PUT", sched, self._put_schedule)
        self.route("GET", sched, self._get_schedule)
        self.route("GET", r"/metadata/identity/oauth2/token", self._imds_token)
        self.route("GET", r"/metadata/instance/compute", self._imds_compute)

    # --- identity platform -----------------------------------------------------------------------------
    def _openid(self, request: Request) -> Any:
        base = f"{self.url}/{TENANT}"
        return {"token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize"}

    def _token(self, request: Request) -> Any:
        form = parse_qs(request.body.decode())
        if form.get("grant_type") != ["client_credentials"] or form.get("client_secret") != ["launcher-secret"]:
            return Response(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."})
        if form.get("scope") != [f"{self.url}/.default"]:
            return Response(400, {"error": "invalid_scope", "error_description": f"AADSTS70011: bad scope {form.get('scope')}"})
        return {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}

    # --- subscription ------------------------------------------------------------------------------------
    def _locations(self, request: Request, sub: str) -> Any:
        value = []
        for name, zones in LOCATIONS.items():
            entry: dict[str, Any] = {"id": f"/subscriptions/{SUB}/locations/{name}", "name": name, "type": "Region",
                                     "displayName": name, "metadata": {"regionType": "Physical"}}
            if zones:
                entry["availabilityZoneMappings"] = [{"logicalZone": z, "physicalZone": f"{name}-az{z}"} for z in zones]
            value.append(entry)
        return {"value": value}

    def _operation(self, request: Request, sub: str, ns: str, loc: str, op: str) -> Any:
        found = self.operations.get(op)
        if found is None:
            return _error(404, "OperationNotFound", f"operation {op} not found")
        if found.polls_left > 0:
            found.polls_left -= 1
            return Response(200, {"name": op, "status": "InProgress"}, {"Retry-After": "0"})
        if found.done is not None:
            found.done()
            found.done = None
        if found.error:
            return {"name": op, "status": "Failed", "error": found.error}
        return {"name": op, "status": "Succeeded"}

    # --- resource groups --------------------------------------------------------------------------------
    def _group_json(self, group: Group) -> dict:
        return {"id": f"/subscriptions/{SUB}/resourceGroups/{group.name}", "name": group.name,
                "type": "Microsoft.Resources/resourceGroups", "location": group.location, "tags": group.tags,
                "properties": {"provisioningState": "Deleting" if group.deleting_since is not None else "Succeeded"}}

    def _put_group(self, request: Request, sub: str, group: str) -> Any:
        body = request.json()
        self._validate("resourceGroup", body)
        existing = self.groups.get(group.lower())
        if existing is not None and existing.deleting_since is not None:
            return _error(409, "ResourceGroupBeingDeleted", f"The resource group '{group}' is being deleted.")
        if existing is None:
            existing = self.groups[group.lower()] = Group(group, body["location"], body.get("tags") or {})
            return Response(201, self._group_json(existing))
        existing.tags = body.get("tags") or existing.tags
        return self._group_json(existing)

    def _get_group(self, request: Request, sub: str, group: str) -> Any:
        found = self.groups.get(group.lower())
        return self._group_json(found) if found else _error(404, "ResourceGroupNotFound",
                                                            f"Resource group '{group}' could not be found.")

    def _delete_group(self, request: Request, sub: str, group: str) -> Any:
        found = self.groups.get(group.lower())
        if found is None:
            return _error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        if found.deleting_since is None:
            found.deleting_since = time.monotonic()
        url = f"{self.url}/subscriptions/{SUB}/operationresults/{found.name}?api-version={request.arg('api-version')}"
        return Response(202, None, {"Location": url, "Retry-After": "0"})

    def _group_deletion(self, request: Request, sub: str, op: str) -> Any:
        found = self.groups.get(op.lower())
        if found is None:
            return Response(200)
        if found.deleting_since is not None and not found.resources:
            del self.groups[op.lower()]
            return Response(200)
        found.resources.clear()  # the contents go first, the group itself on the next poll
        return Response(202, None, {"Location": f"{self.url}{request.path}?api-version={request.arg('api-version')}",
                                    "Retry-After": "0"})

    def _list_groups(self, request: Request, sub: str) -> Any:
        flt = request.arg("$filter", "") or ""
        match = re.fullmatch(r"tagName eq '([^']*)' and tagValue eq '([^']*)'", flt)
        if flt and not match:
            return _error(400, "InvalidFilterInQueryString", f"Invalid $filter '{flt}' specified in the query string.")
        groups = [g for g in self.groups.values() if not match or g.tags.get(match.group(1)) == match.group(2)]
        return {"value": [self._group_json(g) for g in groups]}

    # --- network ------------------------------------------------------------------------------------------
    def _put_network(self, request: Request, sub: str, group: str, kind: str, name: str) -> Any:
        owner = self._owner(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._validate(NETWORK_KINDS[kind], body)
        rid = self._id(owner.name, "Microsoft.Network", kind, name)
        props = dict(body.get("properties") or {})
        if kind == "virtualNetworks":
            props["subnets"] = [{**sn, "id": f"{rid}/subnets/{sn['name']}",
                                 "properties": {**sn.get("properties", {}),
                                                "defaultOutboundAccess": sn.get("properties", {}).get(
                                                    "defaultOutboundAccess", False)}}  # private by default since 2025-07-01
                                for sn in props.get("subnets", [])]
        if kind == "networkInterfaces":
            for config in props.get("ipConfigurations", []):
                subnet = config["properties"]["subnet"]["id"]
                if "/subnets/" not in subnet:
                    return _error(400, "InvalidResourceReference", f"Resource {subnet} referenced by resource {rid} was not found.")
        if kind == "publicIPAddresses":
            props["ipAddress"] = f"20.0.0.{next(self._ids)}"
        resource = {**body, "id": rid, "name": name, "type": f"Microsoft.Network/{kind}", "properties": props}
        owner.resources[f"{kind}/{name}"] = resource
        return self._async(request, "Microsoft.Network", owner.location, resource)

    def _get_resource(self, request: Request, sub: str, group: str, kind: str, name: str) -> Any:
        owner = self.groups.get(group.lower())
        resource = owner.resources.get(f"{kind}/{name}") if owner else None
        if resource is None:
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.Network/{kind}/{name}' under resource "
                          f"group '{group}' was not found.")
        return self._public(resource)

    # --- compute ------------------------------------------------------------------------------------------
    def _put_vm(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self._owner(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._validate("virtualMachine", body)
        props = body["properties"]
        linux = props.get("osProfile", {}).get("linuxConfiguration", {})
        keys = [k.get("keyData", "") for k in linux.get("ssh", {}).get("publicKeys", [])]
        if linux.get("disablePasswordAuthentication") and not keys:
            return _error(400, "InvalidParameter", "Authentication using either SSH or by user name and password must "
                          "be enabled in Linux profile.")
        if any(not re.match(r"(ssh-rsa|ssh-ed25519) [A-Za-z0-9+/=]+", k) for k in keys):
            return _error(400, "InvalidParameter", "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.")
        if len(props.get("osProfile", {}).get("customData", "")) > 87380:
            return _error(400, "InvalidParameter", "Custom data in OSProfile must be in Base64 encoding and with a "
                          "maximum length of 87380 characters.")
        if props.get("securityProfile", {}).get("encryptionAtHost") and not self.encryption_at_host_registered:
            return _error(400, "InvalidParameter", "The property 'securityProfile.encryptionAtHost' is not valid because "
                          "the 'Microsoft.Compute/EncryptionAtHost' feature is not enabled for this subscription.")
        zone = (body.get("zones") or [None])[0]
        failure: dict | None = None
        for fault in self.vm_faults:
            if fault.times > 0 and fault.zone in (None, zone):
                fault.times -= 1
                if fault.code in SYNC_CODES:
                    return _error(SYNC_CODES[fault.code], fault.code, fault.message)
                failure = {"code": fault.code, "message": fault.message}
                break
        for ref in props["networkProfile"]["networkInterfaces"]:
            if f"networkInterfaces/{ref['id'].rsplit('/', 1)[-1]}" not in owner.resources:
                return _error(400, "InvalidResourceReference", f"Resource {ref['id']} not found")
        rid = self._id(owner.name, "Microsoft.Compute", "virtualMachines", name)
        public_props = {**props, "vmId": str(uuid.uuid4()),
                        "osProfile": {k: v for k, v in props["osProfile"].items() if k != "customData"}}  # never returned
        vm = {**body, "id": rid, "name": name, "type": "Microsoft.Compute/virtualMachines",
              "identity": {**body.get("identity", {}), "principalId": str(uuid.uuid4()), "tenantId": TENANT},
              "properties": public_props, "_custom_data": props["osProfile"].get("customData", ""), "_power": "running"}
        owner.resources[f"virtualMachines/{name}"] = vm
        if failure is None:
            disk = f"{name}_OsDisk_1_{uuid.uuid4().hex[:8]}"
            owner.resources[f"disks/{disk}"] = {
                "id": self._id(owner.name, "Microsoft.Compute", "disks", disk), "name": disk, "tags": {},
                "_delete_with": name if props["storageProfile"]["osDisk"].get("deleteOption") == "Delete" else "",
                "properties": {"encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                               "diskSizeGB": props["storageProfile"]["osDisk"].get("diskSizeGB")}}
        else:
            vm["_power"] = "deallocated"
        return self._async(request, "Microsoft.Compute", owner.location, vm, error=failure)

    def _get_vm(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self.groups.get(group.lower())
        vm = owner.resources.get(f"virtualMachines/{name}") if owner else None
        if vm is None:
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under "
                          f"resource group '{group}' was not found.")
        return self._public(vm)

    def _instance_view(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self.groups.get(group.lower())
        if owner is None:
            return _error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        vm = owner.resources.get(f"virtualMachines/{name}")
        if vm is None:
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under "
                          f"resource group '{group}' was not found.")
        state = vm["properties"].get("provisioningState", "Succeeded").lower()
        return {"statuses": [{"code": f"ProvisioningState/{state}"}, {"code": f"PowerState/{vm['_power']}"}]}

    def evict(self, group: str) -> None:
        """A spot eviction with policy Delete: the VM goes, with the disks and NICs marked deleteOption Delete."""
        owner = self.groups[group.lower()]
        for key in [k for k in owner.resources if k.startswith("virtualMachines/")]:
            vm = owner.resources.pop(key)
            for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
                if ref.get("properties", {}).get("deleteOption") == "Delete":
                    owner.resources.pop(f"networkInterfaces/{ref['id'].rsplit('/', 1)[-1]}", None)
            for other in [k for k, r in owner.resources.items()
                          if r.get("_delete_with") == vm["name"] or k.startswith(f"extensions/{vm['name']}/")]:
                del owner.resources[other]

    def delete_group(self, group: str) -> None:
        found = self.groups.get(group.lower())
        if found is not None and found.deleting_since is None:
            found.deleting_since = time.monotonic()

    def _put_extension(self, request: Request, sub: str, group: str, name: str, ext: str) -> Any:
        owner = self._owner(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._validate("extension", body)
        vm = owner.resources.get(f"virtualMachines/{name}")
        if vm is None:
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/virtualMachines/{name}' was not found.")
        if vm["properties"].get("osProfile", {}).get("linuxConfiguration", {}).get("provisionVMAgent") is False:
            return _error(409, "OperationNotAllowed", "Extensions need the VM agent (provisionVMAgent).")
        for before in body["properties"].get("provisionAfterExtensions") or []:
            if f"extensions/{name}/{before}" not in owner.resources:
                return _error(400, "InvalidParameter", f"provisionAfterExtensions names '{before}', not an extension of the VM")
        public = {k: v for k, v in body["properties"].items() if k != "protectedSettings"}  # never returned
        resource = {**body, "id": f"{self._id(owner.name, 'Microsoft.Compute', 'virtualMachines', name)}/extensions/{ext}",
                    "name": ext, "type": "Microsoft.Compute/virtualMachines/extensions", "properties": public,
                    "_protected": body["properties"].get("protectedSettings")}
        owner.resources[f"extensions/{name}/{ext}"] = resource
        return self._async(request, "Microsoft.Compute", owner.location, resource)

    def _get_extension(self, request: Request, sub: str, group: str, name: str, ext: str) -> Any:
        owner = self.groups.get(group.lower())
        resource = owner.resources.get(f"extensions/{name}/{ext}") if owner else None
        return self._public(resource) if resource else _error(404, "ResourceNotFound", f"extension {ext} not found")

    def _delete_extension(self, request: Request, sub: str, group: str, name: str, ext: str) -> Any:
        owner = self.groups.get(group.lower())
        if owner is None or owner.resources.pop(f"extensions/{name}/{ext}", None) is None:
            return Response(204)
        return Response(200)

    # --- authorization and schedules ------------------------------------------------------------------------
    def _put_role(self, request: Request, sub: str, group: str, rid: str) -> Any:
        owner = self._owner(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._validate("roleAssignment", body)
        props = body["properties"]
        if self.principal_not_found > 0:
            self.principal_not_found -= 1
            return _error(400, "PrincipalNotFound", f"Principal {props['principalId'].replace('-', '')} does not exist "
                          f"in the directory {TENANT}. Check that you have the correct principal ID.")
        principals = {r.get("identity", {}).get("principalId") for k, r in owner.resources.items()
                      if k.startswith("virtualMachines/")}
        if props["principalId"] not in principals:
            return _error(400, "PrincipalNotFound", f"Principal {props['principalId']} does not exist in the directory.")
        if not props["roleDefinitionId"].startswith(f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"):
            return _error(400, "InvalidRoleDefinitionId", "The role definition ID is not valid.")
        scope = f"/subscriptions/{SUB}/resourceGroups/{owner.name}"
        resource = {"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{rid}", "name": rid,
                    "type": "Microsoft.Authorization/roleAssignments", "properties": {**props, "scope": scope}}
        owner.resources[f"roleAssignments/{rid}"] = resource
        return Response(201, resource)

    def _put_schedule(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self._owner(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._validate("schedule", body)
        props = body["properties"]
        if not re.fullmatch(r"([01]\d|2[0-3])[0-5]\d", props.get("dailyRecurrence", {}).get("time", "")):
            return _error(400, "InvalidParameter", "dailyRecurrence.time must be HHmm")
        target = props["targetResourceId"].rsplit("/", 1)[-1]
        if f"virtualMachines/{target}" not in owner.resources or name != f"shutdown-computevm-{target}":
            return _error(400, "InvalidParameter", "A VM shutdown schedule is named shutdown-computevm-<vm> and targets that VM.")
        resource = {**body, "id": self._id(owner.name, "Microsoft.DevTestLab", "schedules", name), "name": name,
                    "type": "Microsoft.DevTestLab/schedules", "properties": {**props, "provisioningState": "Succeeded"}}
        owner.resources[f"schedules/{name}"] = resource
        return Response(201, resource)

    def _get_schedule(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self.groups.get(group.lower())
        resource = owner.resources.get(f"schedules/{name}") if owner else None
        return resource if resource else _error(404, "ResourceNotFound", f"schedule {name} not found")

    # --- IMDS (for the VM-side snippets) ------------------------------------------------------------------
    def _this_vm(self) -> dict | None:
        owner = self.groups.get(self.vm["group"].lower())
        return owner.resources.get(f"virtualMachines/{self.vm['name']}") if owner else None

    def _imds_token(self, request: Request) -> Any:
        if request.headers.get("metadata") != "true":
            return Response(400, {"error": "invalid_request", "error_description": "Required metadata header not specified"})
        if not request.arg("api-version") or not request.arg("resource"):
            return Response(400, {"error": "invalid_request", "error_description": "api-version and resource are required"})
        vm = self._this_vm()
        if vm is None:
            return Response(400, {"error": "invalid_request", "error_description": "Identity not found"})
        return {"access_token": VM_TOKEN_PREFIX + vm["identity"]["principalId"], "expires_in": "3599",
                "resource": request.arg("resource"), "token_type": "Bearer"}

    def _imds_compute(self, request: Request) -> Any:
        if request.headers.get("metadata") != "true" or not request.arg("api-version"):
            return Response(400, {"error": "Bad request. Required metadata header not specified"})
        vm = self._this_vm()
        if vm is None:
            return Response(404, {"error": "no VM"})
        return {"subscriptionId": SUB, "resourceGroupName": self.vm["group"], "name": self.vm["name"],
                "location": vm["location"], "vmId": vm["properties"]["vmId"]}
