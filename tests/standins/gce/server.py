"""Compute Engine, Secret Manager, IAM service accounts, Google's OAuth token endpoint and a GCE metadata server, on
one loopback port.

Compute, Secret Manager and IAM requests are checked against the discovery documents shipped in
google-api-python-client. A VM's metadata token acts as the service account the VM was created with; a per-runner
account (one this stand-in's IAM created) holds no project role, so it may only do what the IAM policies of single
resources grant it (the instance's own policy, its secret's policy): anything else answers 403, as GCE would. Capacity and quota problems come back the way GCE reports them: in the insert
operation's `error` (ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED), with the HTTP status GCE uses.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs

from standins.gce.discovery import Discovery, document
from standins.server import Request, Response, SpecViolation, StandIn

TOKEN = "ya29.standin-access-token"
VM_TOKEN = "ya29.standin-vm-token"  # the metadata token of a VM running as the default or a given service account
VM_TOKEN_PREFIX = "ya29.standin-vm-sa."  # + email: the metadata token of a VM running as a per-runner account
INSTANCE_DELETERS = ("roles/compute.instanceAdmin.v1", "roles/compute.instanceAdmin", "roles/compute.admin")
SECRET_READERS = ("roles/secretmanager.secretAccessor", "roles/secretmanager.admin")
SECRET_DELETERS = ("roles/secretmanager.admin",)
_IAM_PATH = re.compile(r"^/v1/projects/[^/]+/serviceAccounts(/[^/]+)?$")
PROJECT = "ml-project"
ZONES = {"us-central1": ["us-central1-a", "us-central1-b", "us-central1-c"]}


@dataclass
class Fault:
    code: str
    message: str
    http: int
    zone: str | None
    times: int


@dataclass
class GceState:
    instances: dict[tuple[str, str], dict] = field(default_factory=dict)  # (zone, name) -> instance JSON
    secrets: dict[str, dict] = field(default_factory=dict)  # secret id -> {"labels", "versions": [bytes], "policy"}
    firewalls: dict[str, dict] = field(default_factory=dict)
    operations: dict[str, dict] = field(default_factory=dict)
    service_accounts: dict[str, dict] = field(default_factory=dict)  # email -> ServiceAccount JSON
    instance_policies: dict[tuple[str, str], dict] = field(default_factory=dict)  # (zone, name) -> IAM policy


class GceStandIn(StandIn):
    def __init__(self) -> None:
        super().__init__()
        self.compute = Discovery(document("compute.v1"))
        self.secretmanager = Discovery(document("secretmanager.v1"))
        self.iam = Discovery(document("iam.v1"))
        self.state = GceState()
        self.insert_faults: list[Fault] = []
        self.vm_identity = {"name": "", "zone": ""}
        self.public_key: Any = None  # the launcher's service account key, to verify self-signed JWTs
        self.service_account = ""  # the launcher's account (its self-signed JWTs are accepted)
        self.refused: list[str] = []  # what a per-runner account tried and was not allowed to do
        self.account_lag = 0  # inserts that still do not know a new per-runner account (IAM propagation)
        self._ids = itertools.count(7000)
        self._setup()

    # --- plumbing ------------------------------------------------------------------------------------
    def check(self, request: Request, handler: Callable, groups: dict[str, str]) -> None:
        if request.path.startswith("/compute/v1/"):
            self.compute.check(request)
        elif _IAM_PATH.match(request.path):
            self.iam.check(request)
        elif request.path.startswith("/v1/"):
            self.secretmanager.check(request)

    def _self_signed_jwt(self, bearer: str) -> bool:
        """Google accepts a service account's self-signed JWT as a bearer token (google-auth sends one when it
        can): the signature must verify with the account's public key, and it must not have expired."""
        import time

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        parts = bearer.split(".")
        if len(parts) != 3 or self.public_key is None:
            return False

        def b64(text: str) -> bytes:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        try:
            self.public_key.verify(b64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(b64(parts[1]))
        except Exception:  # noqa: BLE001 - any defect means: not a valid token
            return False
        return claims.get("iss") == self.service_account and claims.get("exp", 0) > time.time()

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith(("/compute/", "/v1/")):
            auth = request.headers.get("authorization", "")
            bearer = auth[7:] if auth.startswith("Bearer ") else ""
            if bearer.startswith(VM_TOKEN_PREFIX) and bearer[len(VM_TOKEN_PREFIX):] in self.state.service_accounts:
                return self._authorize_runner_account(bearer[len(VM_TOKEN_PREFIX):], request)
            if bearer not in (TOKEN, VM_TOKEN) and not self._self_signed_jwt(bearer):
                return Response(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                                "status": "UNAUTHENTICATED"}})
        return None

    def _authorize_runner_account(self, email: str, request: Request) -> Response | None:
        """A per-runner account has no project role: only the roles bound on the one resource it touches count."""
        member = f"serviceAccount:{email}"
        wanted: tuple[str, ...] = ()
        policy: dict | None = None
        instance = re.fullmatch(r"/compute/v1/projects/[^/]+/zones/([^/]+)/instances/([^/]+)", request.path)
        secret = re.fullmatch(r"/v1/projects/[^/]+/secrets/([^/:]+)(/versions/latest:access)?", request.path)
        if instance and request.method == "DELETE":
            policy, wanted = self.state.instance_policies.get((instance[1], instance[2])), INSTANCE_DELETERS
        elif secret and request.method == "GET" and secret[2]:
            policy, wanted = (self.state.secrets.get(secret[1]) or {}).get("policy"), SECRET_READERS
        elif secret and request.method == "DELETE" and not secret[2]:
            policy, wanted = (self.state.secrets.get(secret[1]) or {}).get("policy"), SECRET_DELETERS
        granted = {b.get("role") for b in (policy or {}).get("bindings", []) if member in b.get("members", [])}
        if granted & set(wanted):
            return None
        self.refused.append(f"{request.method} {request.path} as {email}")
        return Response(403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                                        f"Permission denied for {email} on {request.path}"}})

    def fail_insert(self, code: str, message: str, http: int, zone: str | None = None, times: int = 1) -> None:
        with self.lock:
            self.insert_faults.append(Fault(code, message, http, zone, times))

    def _link(self, path: str) -> str:
        return f"{self.url}/compute/v1/{path}"

    def _operation(self, zone: str | None, kind: str, target: str, error: Fault | None = None) -> dict:
        op_id = str(next(self._ids))
        op = {"kind": "compute#operation", "id": op_id, "name": f"operation-{op_id}", "operationType": kind,
              "targetLink": target, "status": "DONE", "progress": 100,
              "insertTime": datetime.now(timezone.utc).isoformat(),
              "selfLink": self._link(f"projects/{PROJECT}/" + (f"zones/{zone}/" if zone else "global/") +
                                     f"operations/operation-{op_id}")}
        if zone:
            op["zone"] = self._link(f"projects/{PROJECT}/zones/{zone}")
        if error is not None:
            op["error"] = {"errors": [{"code": error.code, "message": error.message}]}
            op["httpErrorStatusCode"] = error.http
            op["httpErrorMessage"] = {400: "BAD REQUEST", 403: "FORBIDDEN", 503: "SERVICE UNAVAILABLE"}.get(error.http, "ERROR")
        self.state.operations[op["name"]] = op
        return op

    def _setup(self) -> None:
        c = r"/compute/v1/projects/(?P<project>[^/]+)"
        self.route("POST", r"/token", self._token)
        self.route("GET", c + r"/regions/(?P<region>[^/]+)", self._region)
        self.route("GET", c + r"/global/images/family/(?P<family>[^/]+)", self._image)
        self.route("POST", c + r"/global/firewalls", self._firewall)
        self.route("GET", c + r"/global/operations/(?P<op>[^/]+)", self._get_global_op)
        self.route("POST", c + r"/zones/(?P<zone>[^/]+)/instances", self._insert)
        self.route("GET", c + r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", self._get)
        self.route("POST", c + r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)/setIamPolicy", self._set_instance_policy)
        self.route("DELETE", c + r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", self._delete)
        self.route("GET", c + r"/aggregated/instances", self._aggregated)
        self.route("GET", c + r"/zones/(?P<zone>[^/]+)/operations", self._list_ops)
        self.route("GET", c + r"/aggregated/operations", self._aggregated_ops)
        self.route("GET", c + r"/zones/(?P<zone>[^/]+)/operations/(?P<op>[^/]+)", self._get_op)
        self.route("POST", c + r"/zones/(?P<zone>[^/]+)/operations/(?P<op>[^/]+)/wait", self._get_op)
        s = r"/v1/projects/(?P<project>[^/]+)/secrets"
        self.route("POST", s, self._create_secret)
        self.route("GET", s, self._list_secrets)
        self.route("POST", s + r"/(?P<secret>[^/:]+):addVersion", self._add_version)
        self.route("POST", s + r"/(?P<secret>[^/:]+):setIamPolicy", self._set_policy)
        self.route("GET", s + r"/(?P<secret>[^/:]+)/versions/latest:access", self._access)
        self.route("DELETE", s + r"/(?P<secret>[^/:]+)", self._delete_secret)
        a = r"/v1/projects/(?P<project>[^/]+)/serviceAccounts"
        self.route("POST", a, self._create_account)
        self.route("GET", a, self._list_accounts)
        self.route("DELETE", a + r"/(?P<email>[^/]+)", self._delete_account)
        m = r"/computeMetadata/v1"
        self.route("GET", m + r"/instance/service-accounts/default/token", self._meta_token)
        self.route("GET", m + r"/(?P<item>project/project-id|instance/zone|instance/name)", self._meta)

    # --- OAuth ---------------------------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        form = parse_qs(request.body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or not form.get("assertion"):
            self.violations.append("token request without a JWT bearer assertion")
            return Response(400, {"error": "invalid_grant"})
        return Response(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    # --- compute -------------------------------------------------------------------------------------
    def _region(self, request: Request, project: str, region: str) -> Any:
        if region not in ZONES:
            return Response(404, {"error": {"code": 404, "message": f"The resource 'projects/{project}/regions/{region}' was not found"}})
        return {"kind": "compute#region", "name": region,
                "zones": [self._link(f"projects/{project}/zones/{z}") for z in ZONES[region]]}

    def _image(self, request: Request, project: str, family: str) -> Any:
        if project not in ("ubuntu-os-cloud", "deeplearning-platform-release"):
            return Response(404, {"error": {"code": 404, "message": "not found"}})
        return {"kind": "compute#image", "name": f"{family}-v20261101", "family": family,
                "selfLink": self._link(f"projects/{project}/global/images/{family}-v20261101")}

    def _firewall(self, request: Request, project: str) -> Any:
        rule = request.json()
        if rule["name"] in self.state.firewalls:
            return Response(409, {"error": {"code": 409, "message": f"The resource '{rule['name']}' already exists",
                                            "errors": [{"reason": "alreadyExists", "message": "already exists"}]}})
        self.state.firewalls[rule["name"]] = rule
        return self._operation(None, "insert", self._link(f"projects/{project}/global/firewalls/{rule['name']}"))

    def _get_global_op(self, request: Request, project: str, op: str) -> Any:
        return self.state.operations.get(op) or Response(404, {"error": {"code": 404, "message": "not found"}})

    def _insert(self, request: Request, project: str, zone: str) -> Any:
        body = request.json()
        link = self._link(f"projects/{project}/zones/{zone}/instances/{body.get('name')}")
        with self.lock:
            for fault in self.insert_faults:
                if fault.times > 0 and fault.zone in (None, zone):
                    fault.times -= 1
                    if fault.http in (403, 429) and fault.code in ("rateLimitExceeded", "QUOTA_EXCEEDED_SYNC"):
                        return Response(fault.http, {"error": {"code": fault.http, "message": fault.message}})
                    return self._operation(zone, "insert", link, fault)
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", body.get("name", "")):
            raise SpecViolation(f"invalid instance name {body.get('name')!r}")
        for key, value in (body.get("labels") or {}).items():
            if not re.fullmatch(r"[a-z0-9_-]{0,63}", value) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key):
                raise SpecViolation(f"invalid label {key}={value}")
        if (zone, body["name"]) in self.state.instances:
            return Response(409, {"error": {"code": 409, "message": "already exists"}})
        unknown = self._unknown_account(project, body)
        if unknown is not None:
            return unknown
        instance = {**body, "kind": "compute#instance", "id": str(next(self._ids)), "status": "PROVISIONING",
                    "zone": self._link(f"projects/{project}/zones/{zone}"), "selfLink": link,
                    "creationTimestamp": datetime.now(timezone.utc).isoformat()}
        self.state.instances[(zone, body["name"])] = instance
        return self._operation(zone, "insert", link)

    def _unknown_account(self, project: str, body: dict) -> Response | None:
        """GCE refuses a VM whose service account does not exist (yet: IAM propagates new accounts in seconds)."""
        for account in body.get("serviceAccounts") or []:
            email = account.get("email", "")
            if email.startswith("cml-") and (email not in self.state.service_accounts or self.account_lag > 0):
                self.account_lag -= 1
                return Response(400, {"error": {"code": 400, "message": f"The resource 'projects/{project}/"
                                                f"serviceAccounts/{email}' was not found"}})
        return None

    def _get(self, request: Request, project: str, zone: str, name: str) -> Any:
        instance = self.state.instances.get((zone, name))
        if instance is None:
            return Response(404, {"error": {"code": 404, "message": f"The resource '{name}' was not found"}})
        return instance

    def _set_instance_policy(self, request: Request, project: str, zone: str, name: str) -> Any:
        if (zone, name) not in self.state.instances:
            return Response(404, {"error": {"code": 404, "message": f"The resource '{name}' was not found"}})
        policy = request.json()["policy"]
        for binding in policy.get("bindings", []):
            for member in binding.get("members", []):
                email = member.removeprefix("serviceAccount:")
                if email.startswith("cml-") and email not in self.state.service_accounts:
                    return Response(400, {"error": {"code": 400, "message": f"Service account {email} does not exist."}})
        self.state.instance_policies[(zone, name)] = policy
        return {**policy, "etag": "BwX="}

    def _delete(self, request: Request, project: str, zone: str, name: str) -> Any:
        self.state.instance_policies.pop((zone, name), None)
        if self.state.instances.pop((zone, name), None) is None:
            return Response(404, {"error": {"code": 404, "message": f"The resource '{name}' was not found"}})
        return self._operation(zone, "delete", self._link(f"projects/{project}/zones/{zone}/instances/{name}"))

    def _aggregated(self, request: Request, project: str) -> Any:
        wanted = dict(re.findall(r"labels\.([a-z0-9_-]+)\s*=\s*([a-z0-9_-]*)", request.arg("filter", "") or ""))
        items: dict[str, dict] = {}
        for (zone, _), instance in self.state.instances.items():
            labels = instance.get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                items.setdefault(f"zones/{zone}", {"instances": []})["instances"].append(instance)
        return {"kind": "compute#instanceAggregatedList", "items": items}

    def _list_ops(self, request: Request, project: str, zone: str) -> Any:
        kind = re.search(r'operationType\s*=\s*"([^"]+)"', request.arg("filter", "") or "")
        ops = [op for op in self.state.operations.values() if op.get("zone", "").endswith(f"/zones/{zone}")
               and (kind is None or op["operationType"] == kind.group(1))]
        return {"kind": "compute#operationList", "items": ops}

    def _aggregated_ops(self, request: Request, project: str) -> Any:
        kind = re.search(r'operationType\s*=\s*"([^"]+)"', request.arg("filter", "") or "")
        items: dict[str, dict] = {}
        for op in self.state.operations.values():
            if kind is None or op["operationType"] == kind.group(1):
                scope = "zones/" + op["zone"].rsplit("/", 1)[-1] if op.get("zone") else "global"
                items.setdefault(scope, {"operations": []})["operations"].append(op)
        return {"kind": "compute#operationAggregatedList", "items": items}

    def _get_op(self, request: Request, project: str, zone: str, op: str) -> Any:
        return self.state.operations.get(op) or Response(404, {"error": {"code": 404, "message": "not found"}})

    def preempt(self, zone: str, name: str) -> None:
        with self.lock:
            self.state.instances.pop((zone, name), None)
            self._operation(zone, "compute.instances.preempted", self._link(f"projects/{PROJECT}/zones/{zone}/instances/{name}"))

    # --- Secret Manager --------------------------------------------------------------------------------
    def _create_secret(self, request: Request, project: str) -> Any:
        secret_id = request.arg("secretId", "")
        if secret_id in self.state.secrets:
            return Response(409, {"error": {"code": 409, "message": "Secret already exists", "status": "ALREADY_EXISTS"}})
        body = request.json()
        self.state.secrets[secret_id] = {"labels": body.get("labels", {}), "versions": [], "policy": None}
        return {"name": f"projects/{project}/secrets/{secret_id}", "labels": body.get("labels", {})}

    def _list_secrets(self, request: Request, project: str) -> Any:
        wanted = dict(re.findall(r"labels\.([a-z0-9_-]+)\s*=\s*([a-z0-9_-]*)", request.arg("filter", "") or ""))
        return {"secrets": [{"name": f"projects/{project}/secrets/{sid}", "labels": s["labels"]}
                            for sid, s in self.state.secrets.items()
                            if all(s["labels"].get(k) == v for k, v in wanted.items())]}

    def _add_version(self, request: Request, project: str, secret: str) -> Any:
        if secret not in self.state.secrets:
            return Response(404, {"error": {"code": 404, "message": "Secret not found", "status": "NOT_FOUND"}})
        data = base64.b64decode(request.json()["payload"]["data"])
        self.state.secrets[secret]["versions"].append(data)
        n = len(self.state.secrets[secret]["versions"])
        return {"name": f"projects/{project}/secrets/{secret}/versions/{n}", "state": "ENABLED"}

    def _set_policy(self, request: Request, project: str, secret: str) -> Any:
        if secret not in self.state.secrets:
            return Response(404, {"error": {"code": 404, "message": "Secret not found"}})
        for binding in request.json()["policy"].get("bindings", []):
            for member in binding.get("members", []):
                email = member.removeprefix("serviceAccount:")
                if email.startswith("cml-") and email not in self.state.service_accounts:
                    return Response(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                    "message": f"Service account {email} does not exist."}})
        self.state.secrets[secret]["policy"] = request.json()["policy"]
        return request.json()["policy"]

    def _access(self, request: Request, project: str, secret: str) -> Any:
        found = self.state.secrets.get(secret)
        if not found or not found["versions"]:
            return Response(404, {"error": {"code": 404, "message": "Secret not found"}})
        return {"name": f"projects/{project}/secrets/{secret}/versions/{len(found['versions'])}",
                "payload": {"data": base64.b64encode(found["versions"][-1]).decode()}}

    def _delete_secret(self, request: Request, project: str, secret: str) -> Any:
        if self.state.secrets.pop(secret, None) is None:
            return Response(404, {"error": {"code": 404, "message": "Secret not found", "status": "NOT_FOUND"}})
        return {}

    # --- IAM service accounts ----------------------------------------------------------------------------
    def _create_account(self, request: Request, project: str) -> Any:
        body = request.json()
        account_id = body.get("accountId", "")
        if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])", account_id) or not 6 <= len(account_id) <= 30:
            raise SpecViolation(f"invalid service account id {account_id!r}")
        given = body.get("serviceAccount") or {}
        if len(given.get("description", "")) > 256 or len(given.get("displayName", "")) > 100:
            raise SpecViolation("service account description over 256 or display name over 100 characters")
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        if email in self.state.service_accounts:
            return Response(409, {"error": {"code": 409, "status": "ALREADY_EXISTS",
                                            "message": f"Service account {account_id} already exists within project "
                                                       f"projects/{project}."}})
        account = {"name": f"projects/{project}/serviceAccounts/{email}", "projectId": project, "email": email,
                   "uniqueId": str(next(self._ids)), **{k: v for k, v in given.items()
                                                        if k in ("displayName", "description")}}
        self.state.service_accounts[email] = account
        return account

    def _list_accounts(self, request: Request, project: str) -> Any:
        size = int(request.arg("pageSize", "20") or 20)
        start = int(request.arg("pageToken", "0") or 0)
        accounts = list(self.state.service_accounts.values())
        out: dict[str, Any] = {"accounts": accounts[start:start + size]}
        if start + size < len(accounts):
            out["nextPageToken"] = str(start + size)
        return out

    def _delete_account(self, request: Request, project: str, email: str) -> Any:
        from urllib.parse import unquote

        email = unquote(email)
        if self.state.service_accounts.pop(email, None) is None:
            return Response(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                            "message": f"Service account projects/{project}/serviceAccounts/{email} "
                                                       "not found."}})
        return {}

    def vm_service_account(self) -> str:
        """The service account of the VM that `vm_identity` names ("" when unknown or the default one)."""
        instance = self.state.instances.get((self.vm_identity["zone"], self.vm_identity["name"])) or {}
        accounts = instance.get("serviceAccounts") or [{}]
        return accounts[0].get("email", "")

    # --- metadata server (for the VM-side snippets) ---------------------------------------------------
    def _meta_ok(self, request: Request) -> bool:
        return request.headers.get("metadata-flavor") == "Google"

    def _meta_token(self, request: Request) -> Any:
        if not self._meta_ok(request):
            return Response(403, "Missing Metadata-Flavor:Google header.")
        email = self.vm_service_account()
        token = VM_TOKEN_PREFIX + email if email in self.state.service_accounts else VM_TOKEN
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _meta(self, request: Request, item: str) -> Any:
        if not self._meta_ok(request):
            return Response(403, "Missing Metadata-Flavor:Google header.")
        value = {"project/project-id": PROJECT, "instance/zone": f"projects/123456/zones/{self.vm_identity['zone']}",
                 "instance/name": self.vm_identity["name"]}[item]
        return Response(200, value, {"Content-Type": "application/text"})
