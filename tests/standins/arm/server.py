"""Azure Resource Manager as far as cml-action uses it, plus the identity platform's token endpoint and IMDS.

Every ARM request must carry an api-version and a bearer token issued by the token endpoint; bodies are checked
against the property lists in shapes.py. Deleting a resource group deletes everything in it, as in Azure.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from standins.arm.shapes import ENUMS, PROPERTIES, TOP
from standins.server import Request, Response, SpecViolation, StandIn

TOKEN = "eyJ.arm-standin-token"
VM_TOKEN = "eyJ.vm-identity-token"
SUB = "00000000-1111-2222-3333-444444444444"
TENANT = "tenant-standin"
ERR = {"SkuNotAvailable": 409, "ZonalAllocationFailed": 409, "OperationNotAllowed": 409}


@dataclass
class Fault:
    code: str
    message: str
    status: int
    zone: str | None
    times: int


@dataclass
class Group:
    name: str
    location: str
    tags: dict[str, str]
    resources: dict[str, dict] = field(default_factory=dict)  # "type/name" -> resource JSON


class ArmStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, Group] = {}
        self.vm_faults: list[Fault] = []
        self.vm_identity = {"group": ""}
        self._ids = itertools.count(1)
        self._setup()

    def fail_vm(self, code: str, message: str, zone: str | None = None, times: int = 1) -> None:
        with self.lock:
            self.vm_faults.append(Fault(code, message, ERR.get(code, 409), zone, times))

    # --- plumbing ------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        if request.path.lower().startswith("/subscriptions/"):
            if request.headers.get("authorization") not in (f"Bearer {TOKEN}", f"Bearer {VM_TOKEN}"):
                return Response(401, {"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}})
        return None

    def check(self, request: Request, handler: Callable, groups: dict[str, str]) -> None:
        if request.path.lower().startswith("/subscriptions/") and not request.arg("api-version"):
            raise SpecViolation("ARM requests need an api-version query parameter")

    def _shape(self, kind: str, body: dict) -> None:
        for key in body:
            if key not in TOP:
                raise SpecViolation(f"{kind}: unknown top-level property {key!r}")
        props = body.get("properties") or {}
        for key, value in props.items():
            if key not in PROPERTIES[kind]:
                raise SpecViolation(f"{kind}: unknown property {key!r}")
            allowed = ENUMS.get((kind, key))
            if allowed and value not in allowed:
                raise SpecViolation(f"{kind}: {key} must be one of {sorted(allowed)}, got {value!r}")

    def _id(self, group: str, provider: str, kind: str, name: str) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/{provider}/{kind}/{name}"

    def _setup(self) -> None:
        self.route("GET", rf"/{TENANT}/v2\.0/\.well-known/openid-configuration", self._openid)
        self.route("POST", rf"/{TENANT}/oauth2/v2\.0/token", self._token)
        s = r"(?i)/subscriptions/(?P<sub>[^/]+)"
        g = s + r"/resourcegroups/(?P<group>[^/]+)"
        self.route("PUT", g, self._put_group)
        self.route("GET", g, self._get_group)
        self.route("DELETE", g, self._delete_group)
        self.route("GET", s + r"/resourcegroups", self._list_groups)
        net = g + r"/providers/Microsoft\.Network/"
        self.route("PUT", net + r"(?P<kind>networkSecurityGroups|virtualNetworks|publicIPAddresses|networkInterfaces)/(?P<name>[^/]+)",
                   self._put_network)
        comp = g + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)"
        self.route("PUT", comp, self._put_vm)
        self.route("GET", comp + r"/instanceView", self._instance_view)
        self.route("PUT", comp + r"/extensions/(?P<ext>[^/]+)", self._put_extension)
        self.route("PUT", g + r"/providers/Microsoft\.Authorization/roleAssignments/(?P<rid>[^/]+)", self._put_role)
        self.route("GET", r"/metadata/identity/oauth2/token", self._imds_token)
        self.route("GET", r"/metadata/instance/compute", self._imds_compute)

    # --- identity platform -----------------------------------------------------------------------------
    def _openid(self, request: Request) -> Any:
        base = f"{self.url}/{TENANT}"
        return {"token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize"}

    def _token(self, request: Request) -> Any:
        from urllib.parse import parse_qs

        form = parse_qs(request.body.decode())
        if form.get("grant_type") != ["client_credentials"] or form.get("client_secret") != ["launcher-secret"]:
            return Response(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."})
        return {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}

    # --- resource groups --------------------------------------------------------------------------------
    def _group_json(self, group: Group) -> dict:
        return {"id": f"/subscriptions/{SUB}/resourceGroups/{group.name}", "name": group.name,
                "type": "Microsoft.Resources/resourceGroups", "location": group.location, "tags": group.tags,
                "properties": {"provisioningState": "Succeeded"}}

    def _put_group(self, request: Request, sub: str, group: str) -> Any:
        body = request.json()
        self._shape("resourceGroup", body)
        existing = self.groups.get(group.lower())
        if existing is None:
            existing = self.groups[group.lower()] = Group(group, body["location"], body.get("tags") or {})
            return Response(201, self._group_json(existing))
        existing.tags = body.get("tags") or existing.tags
        return self._group_json(existing)

    def _get_group(self, request: Request, sub: str, group: str) -> Any:
        found = self.groups.get(group.lower())
        return self._group_json(found) if found else Response(404, {"error": {"code": "ResourceGroupNotFound",
                                                                               "message": f"Resource group '{group}' could not be found."}})

    def _delete_group(self, request: Request, sub: str, group: str) -> Any:
        if self.groups.pop(group.lower(), None) is None:
            return Response(404, {"error": {"code": "ResourceGroupNotFound", "message": f"Resource group '{group}' could not be found."}})
        return Response(200)

    def _list_groups(self, request: Request, sub: str) -> Any:
        flt = request.arg("$filter", "") or ""
        match = re.match(r"tagName eq '([^']*)' and tagValue eq '([^']*)'", flt)
        groups = [g for g in self.groups.values() if not match or g.tags.get(match.group(1)) == match.group(2)]
        return {"value": [self._group_json(g) for g in groups]}

    # --- network ------------------------------------------------------------------------------------------
    def _group_or_404(self, group: str) -> Group | Response:
        found = self.groups.get(group.lower())
        if found is None:
            return Response(404, {"error": {"code": "ResourceGroupNotFound", "message": f"Resource group '{group}' could not be found."}})
        return found

    def _put_network(self, request: Request, sub: str, group: str, kind: str, name: str) -> Any:
        owner = self._group_or_404(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._shape({"networkSecurityGroups": "networkSecurityGroup", "virtualNetworks": "virtualNetwork",
                     "publicIPAddresses": "publicIPAddress", "networkInterfaces": "networkInterface"}[kind], body)
        rid = self._id(owner.name, "Microsoft.Network", kind, name)
        props = dict(body.get("properties") or {})
        if kind == "virtualNetworks":
            props["subnets"] = [{**sn, "id": f"{rid}/subnets/{sn['name']}"} for sn in props.get("subnets", [])]
        if kind == "publicIPAddresses":
            props["ipAddress"] = f"20.0.0.{next(self._ids)}"
        props["provisioningState"] = "Succeeded"
        resource = {**body, "id": rid, "name": name, "type": f"Microsoft.Network/{kind}", "properties": props}
        owner.resources[f"{kind}/{name}"] = resource
        return Response(201, resource)

    # --- compute ------------------------------------------------------------------------------------------
    def _put_vm(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self._group_or_404(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._shape("virtualMachine", body)
        zone = (body.get("zones") or [None])[0]
        with self.lock:
            for fault in self.vm_faults:
                if fault.times > 0 and fault.zone in (None, zone):
                    fault.times -= 1
                    return Response(fault.status, {"error": {"code": fault.code, "message": fault.message}})
        props = body["properties"]
        nic = props["networkProfile"]["networkInterfaces"][0]["id"]
        if f"networkInterfaces/{nic.rsplit('/', 1)[-1]}" not in owner.resources:
            return Response(400, {"error": {"code": "InvalidResourceReference", "message": f"Resource {nic} not found"}})
        rid = self._id(owner.name, "Microsoft.Compute", "virtualMachines", name)
        vm = {**body, "id": rid, "name": name, "type": "Microsoft.Compute/virtualMachines",
              "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": TENANT},
              "properties": {**props, "provisioningState": "Succeeded", "vmId": str(uuid.uuid4())}}
        vm["properties"]["osProfile"] = {k: v for k, v in props["osProfile"].items() if k != "customData"}  # never returned
        owner.resources[f"virtualMachines/{name}"] = {**vm, "_custom_data": props["osProfile"].get("customData", "")}
        owner.resources[f"disks/{name}-osdisk"] = {"id": f"{rid}-osdisk"}
        return Response(201, vm)

    def _instance_view(self, request: Request, sub: str, group: str, name: str) -> Any:
        owner = self.groups.get(group.lower())
        vm = owner.resources.get(f"virtualMachines/{name}") if owner else None
        if vm is None:
            return Response(404, {"error": {"code": "ResourceNotFound", "message": f"The Resource '{name}' was not found."}})
        power = vm.get("_power", "running")  # private fields (leading _) are never sent
        return {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": f"PowerState/{power}"}]}

    def _put_extension(self, request: Request, sub: str, group: str, name: str, ext: str) -> Any:
        owner = self._group_or_404(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._shape("extension", body)
        if f"virtualMachines/{name}" not in owner.resources:
            return Response(404, {"error": {"code": "ResourceNotFound", "message": "VM not found"}})
        resource = {**body, "id": f"{self._id(owner.name, 'Microsoft.Compute', 'virtualMachines', name)}/extensions/{ext}",
                    "name": ext, "properties": {**{k: v for k, v in body["properties"].items() if k != "protectedSettings"},
                                                "provisioningState": "Succeeded"}}
        owner.resources[f"extensions/{name}/{ext}"] = {**resource, "_protected": body["properties"].get("protectedSettings")}
        return Response(201, resource)

    def _put_role(self, request: Request, sub: str, group: str, rid: str) -> Any:
        owner = self._group_or_404(group)
        if isinstance(owner, Response):
            return owner
        body = request.json()
        self._shape("roleAssignment", body)
        resource = {"id": f"/subscriptions/{SUB}/resourceGroups/{owner.name}/providers/Microsoft.Authorization/roleAssignments/{rid}",
                    "name": rid, "type": "Microsoft.Authorization/roleAssignments",
                    "properties": {**body["properties"], "scope": f"/subscriptions/{SUB}/resourceGroups/{owner.name}"}}
        owner.resources[f"roleAssignments/{rid}"] = resource
        return Response(201, resource)

    # --- IMDS (for the VM-side snippet) ------------------------------------------------------------------
    def _imds_token(self, request: Request) -> Any:
        if request.headers.get("metadata") != "true":
            return Response(400, {"error": "bad_request", "error_description": "Required metadata header not specified"})
        return {"access_token": VM_TOKEN, "expires_in": "3599", "token_type": "Bearer"}

    def _imds_compute(self, request: Request) -> Any:
        if request.headers.get("metadata") != "true":
            return Response(400, {"error": "Bad request. Required metadata header not specified"})
        return {"subscriptionId": SUB, "resourceGroupName": self.vm_identity["group"], "location": "westeurope"}
