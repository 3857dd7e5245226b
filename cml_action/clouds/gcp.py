"""Google Compute Engine through google-cloud-compute (REST transport), imported only when used.

Guarantee: GCE stops rather than deletes a VM whose guest shuts down, so power-off is made deletion twice
over: the VM runs with `scheduling.maxRunDuration` = max lifetime and `instanceTerminationAction=DELETE`
(GCE itself deletes it at that instant, disks included: `autoDelete`), and the VM's power-off deletes its own
instance through the Compute API with its service account before shutting down. Spot VMs use the same
DELETE action on preemption.

Secret hand-over: not instance metadata (readable by anyone with compute.instances.get). The registration is
a Secret Manager secret named after the runner, labelled like the VM; the VM reads it with its service
account's token from the metadata server and deletes it. The secret's IAM policy grants the VM's account alone.

Identity: any process on the VM can take the VM's token from the metadata server, so the VM never runs as the
project's default compute account (often Editor). Without cloud-permission-set each runner gets its own service
account (id = runner name) with no project role: the secret's policy lets it read and delete that secret, and the
instance's own IAM policy lets it delete that instance (instanceAdmin on the one resource), nothing else. The
account survives a failed placement for the next one (its id is the launch's own), is listed by `find` once its
VM is gone, and is deleted with the VM by teardown, sweep and a failed launch's cleanup.

Network: an ephemeral external IP for outbound HTTPS (the default network has no NAT), and a shared firewall
rule `cml-action-deny-ingress` (priority 100, target tag `cml-action-runner`) that denies every inbound
connection, overriding the default network's allow rules.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from datetime import datetime
from typing import Any, Callable, Mapping, TypeVar

from cml_action.clouds.base import TAG_LABEL, TAG_REPO, TAG_RUNNER, CapacityError, Instance, MachineSpec, Placement
from cml_action.errors import CloudError, UserError
from cml_action.failures import PartialListing, one_line
from cml_action.retry import pause

T = TypeVar("T")

SIZES = {"s": "n2-standard-2", "m": "n2-standard-8", "l": "n2-standard-16", "xl": "n2-standard-32"}
# generic GPU -> (machine type, accelerator type or "" when the GPU comes with the machine type)
GPUS = {"t4": "n1-standard-8 + nvidia-tesla-t4", "l4": "g2-standard-8", "v100": "n1-standard-8 + nvidia-tesla-v100",
        "a100": "a2-highgpu-1g", "h100": "a3-highgpu-1g"}
_GPU_MACHINES = {"t4": ("n1-standard-8", "nvidia-tesla-t4"), "v100": ("n1-standard-8", "nvidia-tesla-v100"),
                 "l4": ("g2-standard-{n4}", ""), "a100": ("a2-highgpu-{n}g", ""), "h100": ("a3-highgpu-{n}g", "")}
_ACCELERATOR_OF = {"g2": "nvidia-l4", "a2": "nvidia-tesla-a100", "a3": "nvidia-h100-80gb"}
CPU_IMAGE = ("ubuntu-os-cloud", "ubuntu-2404-lts-amd64")
GPU_IMAGE = ("deeplearning-platform-release", "common-cu128-ubuntu-2204-nvidia-570")
FIREWALL = "cml-action-deny-ingress"
NETWORK_TAG = "cml-action-runner"
TAGS_METADATA = "cml-action-tags"
_LEFTOVERS = ("secret/", "account/")  # ids of what a runner left without its VM

CAPACITY = {"ZONE_RESOURCE_POOL_EXHAUSTED": ("zone", True), "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS": ("zone", True),
            "STOCKOUT": ("zone", True), "QUOTA_EXCEEDED": ("region", False),
            "UNSUPPORTED_OPERATION": ("zone", False), "RESOURCE_NOT_FOUND": ("type", False)}

PERMISSIONS = """\
**Launcher** (a service account or Workload Identity Federation principal): `roles/compute.instanceAdmin.v1`
(create and delete the VMs, set each VM's own IAM policy), `roles/secretmanager.admin` (create, set the IAM policy of,
and delete the per-runner secret), `compute.firewalls.create` once (the shared deny rule); and, unless you pass
`cloud-permission-set`, `roles/iam.serviceAccountAdmin` and `roles/iam.serviceAccountUser` (create, attach, list and
delete the per-runner service accounts `cml-…@PROJECT.iam.gserviceaccount.com`); with it,
`roles/iam.serviceAccountUser` on that account.
**VM**: without `cloud-permission-set`, its own service account with no project role at all: read and delete its own
registration secret and delete its own instance, granted on those two resources alone (removed with the VM).
`cloud-permission-set` (a service account email) replaces it for jobs that need more: that account needs
`roles/secretmanager.secretAccessor` (granted on each secret by the launcher) plus `secretmanager.secrets.delete` on
secrets labelled `cml-action-runner`, and `compute.instances.delete` on itself (a custom role). The project's
default compute service account is never used."""

GUARANTEE = ("GCE enforces the lifetime itself: the VM is created with `maxRunDuration` and termination action "
             "*DELETE*, so at max lifetime (or on spot preemption) GCE deletes it and its disk. When the job is done "
             "or the VM stays idle, it deletes its own instance through the API before shutting down.")




def label_value(text: str) -> str:
    """GCE label values allow [a-z0-9_-], 63 characters: a deterministic, filterable form of a tag value."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


class GcpProvider:
    cloud = "gcp"

    def __init__(self, env: Mapping[str, str], region: str) -> None:
        self.region = region
        self._env = env
        self.endpoint = env.get("CML_GCP_ENDPOINT", "").rstrip("/")
        self.secrets_endpoint = env.get("CML_GCP_SECRETMANAGER_ENDPOINT", "https://secretmanager.googleapis.com").rstrip("/")
        # an endpoint override for Compute (tests, private access) applies to IAM too unless IAM has its own
        self.iam_endpoint = (env.get("CML_GCP_IAM_ENDPOINT") or self.endpoint or "https://iam.googleapis.com").rstrip("/")
        self._credentials: Any = None
        self._project = env.get("CML_GCP_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or env.get("CLOUDSDK_CORE_PROJECT", "")
        self._clients: dict[str, Any] = {}

    # --- plumbing ---------------------------------------------------------------------------------
    def _auth(self) -> Any:
        if self._credentials is None:
            from google.auth.exceptions import DefaultCredentialsError

            scopes = ["https://www.googleapis.com/auth/cloud-platform"]
            try:
                self._credentials, project = self._credentials_from_env(scopes)
            except DefaultCredentialsError:
                raise UserError("no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS or use "
                                "google-github-actions/auth") from None
            self._project = self._project or project or ""
            if not self._project:
                raise UserError("no Google Cloud project: set CML_GCP_PROJECT (or GOOGLE_CLOUD_PROJECT)")
        return self._credentials

    def _credentials_from_env(self, scopes: list[str]) -> tuple[Any, str | None]:
        """A service-account key named in the environment we were given (not only the process's); anything else
        (Workload Identity Federation from google-github-actions/auth, metadata server) through google.auth.default."""
        import google.auth

        key_file = self._env.get("GOOGLE_APPLICATION_CREDENTIALS", "")
        if key_file:
            try:
                info = json.loads(open(key_file, encoding="utf-8").read())
            except (OSError, ValueError) as exc:
                raise UserError(f"GOOGLE_APPLICATION_CREDENTIALS={key_file}: cannot read it: {exc}") from None
            if info.get("type") == "service_account":
                from google.oauth2 import service_account

                return service_account.Credentials.from_service_account_info(info, scopes=scopes), info.get("project_id")
        return google.auth.default(scopes=scopes)

    @property
    def project(self) -> str:
        self._auth()
        return self._project

    def _client(self, name: str) -> Any:
        if name not in self._clients:
            from google.cloud import compute_v1

            options = {"api_endpoint": self.endpoint} if self.endpoint else None
            self._clients[name] = getattr(compute_v1, name)(transport="rest", credentials=self._auth(),
                                                            client_options=options)
        return self._clients[name]

    def _session(self) -> Any:
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self._auth())

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Throttling is retried with backoff; any other API error becomes one CloudError line (NotFound and
        Conflict pass through: callers treat them as "already gone" / "already there")."""
        from google.api_core import exceptions as gexc

        for attempt in range(6):
            try:
                return fn()
            except (gexc.NotFound, gexc.Conflict):
                raise
            except gexc.GoogleAPICallError as exc:
                throttled = isinstance(exc, gexc.TooManyRequests) or "rateLimitExceeded" in str(exc)
                if not throttled or attempt == 5:
                    raise CloudError(f"Google Cloud refused to {what}: {exc.code} {exc.message}") from None
            pause(attempt)
        raise CloudError(f"Google Cloud kept throttling {what}")  # pragma: no cover

    # --- catalogue --------------------------------------------------------------------------------
    def zones(self, region: str) -> list[str]:
        data = self._call("list zones", lambda: self._client("RegionsClient").get(project=self.project, region=region))
        return sorted(url.rsplit("/", 1)[-1] for url in data.zones)

    def native_type(self, generic: str, gpu: str, gpu_count: int) -> str:
        generic = generic.lower()
        if gpu in ("", "none"):
            return SIZES.get(generic, generic)
        if gpu not in _GPU_MACHINES:
            if gpu == "a10g":
                raise UserError("--cloud-gpu a10g is AWS-only; on GCP choose one of " + ", ".join(GPUS))
            if gpu.startswith("nvidia-"):
                return SIZES.get(generic, generic)  # a native accelerator rides on the generic machine
            raise UserError(f"--cloud-gpu {gpu!r} is not offered on GCP; choose one of {', '.join(GPUS)}")
        machine, _ = _GPU_MACHINES[gpu]
        if generic not in SIZES and "-" in generic:
            return generic  # a native machine type
        if gpu_count not in (1, 2, 4, 8):
            raise UserError(f"--cloud-gpu-count {gpu_count}: GCP offers 1, 2, 4 or 8 GPUs per VM")
        return machine.format(n=gpu_count, n4=max(4, 4 * gpu_count) if gpu == "l4" else 0)

    def _accelerator(self, spec: MachineSpec, machine_type: str) -> tuple[str, int]:
        if spec.gpu in ("", "none"):
            return "", 0
        family = machine_type.split("-", 1)[0]
        if family in _ACCELERATOR_OF:
            return "", 0  # the GPUs come with the machine type
        accelerator = _GPU_MACHINES.get(spec.gpu, ("", spec.gpu))[1] or spec.gpu
        return accelerator, spec.gpu_count

    def _image(self, spec: MachineSpec) -> str:
        if spec.image:
            return spec.image
        project, family = CPU_IMAGE if spec.gpu in ("", "none") else GPU_IMAGE
        # an official image project: owner-verified by construction
        image = self._call("look up the image", lambda: self._client("ImagesClient").get_from_family(
            project=project, family=family))
        return image.self_link

    # --- secret hand-over -------------------------------------------------------------------------
    def _secret_id(self, name: str) -> str:
        return f"cml-action-{name}"

    def secret_snippet(self, spec: MachineSpec) -> str:
        return (_VM_SECRET.replace("@SECRET@", shlex.quote(self._secret_id(spec.name)))
                .replace("@ENDPOINT@", shlex.quote(self.secrets_endpoint)))

    def poweroff_snippet(self, spec: MachineSpec) -> str:
        return _VM_POWEROFF

    def _labels(self, tags: Mapping[str, str]) -> dict[str, str]:
        return {label_value(k): label_value(v) for k, v in tags.items()}

    def _store_secret(self, spec: MachineSpec) -> None:
        session = self._session()
        base = f"{self.secrets_endpoint}/v1/projects/{self.project}/secrets"
        secret_id = self._secret_id(spec.name)
        created = session.post(f"{base}?secretId={secret_id}", json={
            "replication": {"automatic": {}}, "labels": self._labels(spec.tags)})
        if created.status_code != 409:  # 409: left by this launch's previous placement, whose cleanup failed
            self._http(created, "create the registration secret")
        data = base64.b64encode(spec.secret.encode()).decode()
        self._http(session.post(f"{base}/{secret_id}:addVersion", json={"payload": {"data": data}}),
                   "store the registration")
        # the VM's account alone may read it; the runner's own account may also delete it (it has no project role)
        bindings = [{"role": "roles/secretmanager.secretAccessor", "members": [f"serviceAccount:{self._vm_account(spec)}"]}]
        if not spec.permission_set:
            bindings.append({"role": "roles/secretmanager.admin", "members": [f"serviceAccount:{self._vm_account(spec)}"]})
        self._propagating(lambda: session.post(f"{base}/{secret_id}:setIamPolicy", json={"policy": {"bindings": bindings}}),
                          "grant the VM access to its registration")

    # --- the VM's identity ---------------------------------------------------------------------------
    def _vm_account(self, spec: MachineSpec) -> str:
        """`cloud-permission-set`, or the runner's own account: never the project's default compute account,
        whose token (often Editor on the project) any job could take from the metadata server."""
        return spec.permission_set or self._account_email(spec.name)

    def _account_email(self, name: str) -> str:
        return f"{name}@{self.project}.iam.gserviceaccount.com"

    def _accounts_url(self) -> str:
        return f"{self.iam_endpoint}/v1/projects/{self.project}/serviceAccounts"

    def _create_account(self, spec: MachineSpec) -> None:
        """One service account per runner with no project role. What it may do is granted on single resources:
        read and delete its registration secret, delete its own instance. 409: made by an earlier placement of this
        launch, which keeps it for the next one."""
        description = json.dumps({k: spec.tags[k] for k in (TAG_LABEL, TAG_REPO) if k in spec.tags},
                                 separators=(",", ":"))[:256]
        response = self._session().post(self._accounts_url(), json={"accountId": spec.name, "serviceAccount": {
            "displayName": f"cml-action runner {spec.name}"[:100], "description": description}})
        if response.status_code != 409:
            self._http(response, "create the runner's service account")

    def _grant_instance(self, spec: MachineSpec, zone: str) -> None:
        """Let the runner's account delete its own instance (the power-off path), and nothing else in the project."""
        from google.cloud import compute_v1

        member = f"serviceAccount:{self._account_email(spec.name)}"
        request = compute_v1.ZoneSetPolicyRequest(policy=compute_v1.Policy(bindings=[
            compute_v1.Binding(role="roles/compute.instanceAdmin.v1", members=[member])]))
        client = self._client("InstancesClient")
        self._call("let the VM delete itself", lambda: client.set_iam_policy(
            project=self.project, zone=zone, resource=spec.name, zone_set_policy_request_resource=request))

    def _propagating(self, send: Callable[[], Any], what: str) -> Any:
        """IAM takes a few seconds to know a new service account everywhere: retry "does not exist" for a while."""
        for attempt in range(6):
            response = send()
            if response.status_code != 400 or "does not exist" not in response.text or attempt == 5:
                return self._http(response, what)
            pause(attempt)
        return None  # pragma: no cover

    def _delete_account(self, name: str) -> None:
        response = self._session().delete(f"{self._accounts_url()}/{self._account_email(name)}")
        if response.status_code not in (200, 404):
            self._http(response, "delete the runner's service account")

    def _leftover_accounts(self, tags: Mapping[str, str]) -> list[str]:
        """Runner names of our service accounts whose description carries all of `tags`. A launcher that may not
        list service accounts (cloud-permission-set users need no IAM admin role) never created any: none."""
        names, token = [], ""
        while True:
            params = {"pageSize": 100, **({"pageToken": token} if token else {})}
            response = self._session().get(self._accounts_url(), params=params)
            if response.status_code == 403:
                return names
            listing = self._http(response, "list service accounts")
            for account in listing.get("accounts", []):
                try:
                    described = json.loads(account.get("description") or "{}")
                except ValueError:
                    continue
                name = account.get("email", "").split("@", 1)[0]
                if isinstance(described, dict) and all(described.get(k, name if k == TAG_RUNNER else None) == v
                                                       for k, v in tags.items()):
                    names.append(name)
            token = listing.get("nextPageToken", "")
            if not token:
                return names

    def _delete_secret(self, name: str) -> None:
        response = self._session().delete(f"{self.secrets_endpoint}/v1/projects/{self.project}/secrets/{self._secret_id(name)}")
        if response.status_code not in (200, 404):
            self._http(response, "delete the registration secret")

    @staticmethod
    def _http(response: Any, what: str) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json().get("error", {}).get("message", "")
            except ValueError:
                message = response.text[:200]
            if response.status_code == 403:
                raise CloudError(f"Google Cloud refused to {what} (403): {message}; see the README for the roles needed")
            raise CloudError(f"Google Cloud failed to {what}: {response.status_code} {message}")
        return response.json() if response.content else {}

    def _firewall(self, network: str) -> None:
        from google.api_core import exceptions as gexc
        from google.cloud import compute_v1

        rule = compute_v1.Firewall(
            name=FIREWALL, network=network, direction="INGRESS", priority=100, target_tags=[NETWORK_TAG],
            source_ranges=["0.0.0.0/0"], denied=[compute_v1.Denied(I_p_protocol="all")],
            description="cml-action runners accept no inbound connection")
        try:
            self._call("create the deny-ingress firewall rule", lambda: self._client("FirewallsClient").insert(
                project=self.project, firewall_resource=rule).result())
        except gexc.Conflict:
            pass  # shared by every runner of the project: already there

    # --- lifecycle ----------------------------------------------------------------------------------
    def create(self, spec: MachineSpec, placement: Placement) -> Instance:
        from google.cloud import compute_v1

        stored = False
        name = spec.name
        zone = placement.zone
        try:
            network = "global/networks/default" if not spec.subnet else ""
            if network:
                self._firewall(network)
            image = self._image(spec)
            if not spec.permission_set:
                self._create_account(spec)
            self._store_secret(spec)
            stored = True
            accelerator, count = self._accelerator(spec, placement.machine_type)
            scheduling = compute_v1.Scheduling(
                instance_termination_action="DELETE", max_run_duration=compute_v1.Duration(seconds=spec.max_lifetime_s),
                on_host_maintenance="TERMINATE" if spec.gpu not in ("", "none") else "MIGRATE",
                automatic_restart=False, provisioning_model="SPOT" if placement.spot else "STANDARD")
            interface = compute_v1.NetworkInterface(
                access_configs=[compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")])
            if spec.subnet:
                interface.subnetwork = spec.subnet
            else:
                interface.network = network
            resource = compute_v1.Instance(
                name=name, machine_type=f"zones/{zone}/machineTypes/{placement.machine_type}",
                labels=self._labels(spec.tags), tags=compute_v1.Tags(items=[NETWORK_TAG]),
                disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
                    source_image=image, disk_size_gb=spec.disk_gb, labels=self._labels(spec.tags)))],
                network_interfaces=[interface], scheduling=scheduling,
                shielded_instance_config=compute_v1.ShieldedInstanceConfig(
                    enable_secure_boot=spec.gpu in ("", "none"), enable_vtpm=True, enable_integrity_monitoring=True),
                service_accounts=[compute_v1.ServiceAccount(email=self._vm_account(spec),
                                                            scopes=["https://www.googleapis.com/auth/cloud-platform"])],
                metadata=compute_v1.Metadata(items=[
                    compute_v1.Items(key="startup-script", value=spec.startup_script),
                    compute_v1.Items(key=TAGS_METADATA, value=json.dumps(spec.tags, sort_keys=True))]),
            )
            if accelerator:
                resource.guest_accelerators = [compute_v1.AcceleratorConfig(
                    accelerator_type=f"zones/{zone}/acceleratorTypes/{accelerator}", accelerator_count=count)]
            self._insert(zone, resource, fresh_account=not spec.permission_set)
            if not spec.permission_set:
                self._grant_instance(spec, zone)
            return Instance(f"{zone}/{name}", name, zone, "pending", dict(spec.tags), None)
        except BaseException as exc:
            # a cleanup that fails is noted on the original error (the launcher's cleanup by label retries it),
            # never raised over it: the capacity error must reach the zone/type fallback
            for line in self._cleanup_failed(name, zone, stored):
                exc.add_note(f"cleanup: {line}")
            raise

    def _insert(self, zone: str, resource: Any, fresh_account: bool) -> None:
        """Insert and wait. A service account created seconds ago may not be known to Compute yet ("not found"):
        that is retried for a while; capacity and quota failures come back classified for the fallback."""
        from google.api_core import exceptions as gexc

        client = self._client("InstancesClient")
        for attempt in range(6):
            try:
                operation = self._call("create the VM", lambda: client.insert(project=self.project, zone=zone,
                                                                             instance_resource=resource))
                operation.result()  # GCE reports capacity and quota failures in the operation
                return
            except (CloudError, gexc.GoogleAPICallError, gexc.RetryError) as exc:
                unknown = re.search(r"serviceAccounts/\S+' was not found|service account \S+ does not exist", str(exc),
                                    re.IGNORECASE)
                if not (fresh_account and unknown and attempt < 5):
                    raise self._classify(exc) from None
            pause(attempt)

    def _classify(self, exc: Exception) -> Exception:
        codes = [str(e.get("code", "")) for e in getattr(exc, "errors", []) or [] if isinstance(e, dict)]
        text = " ".join([str(exc), *codes])
        if "quota" in text.lower() and "QUOTA_EXCEEDED" not in text:
            text += " QUOTA_EXCEEDED"
        for code, (scope, transient) in CAPACITY.items():
            if code in text:
                return CapacityError(f"{code}: {getattr(exc, 'message', str(exc))}".strip(), scope, transient, code)  # type: ignore[arg-type]
        if isinstance(exc, CloudError):
            return exc
        return CloudError(f"Google Cloud refused to create the VM: {getattr(exc, 'message', str(exc))}")

    def _cleanup_failed(self, name: str, zone: str, stored: bool) -> list[str]:
        """Remove what a failed placement created; return what could not be removed, one line each."""
        from google.api_core import exceptions as gexc

        failures: list[str] = []
        try:
            self._call("remove the half-created VM", lambda: self._client("InstancesClient").delete(
                project=self.project, zone=zone, instance=name).result())
        except gexc.NotFound:
            pass
        except Exception as exc:  # noqa: BLE001 - reported, the secret is still tried
            failures.append(f"remove the half-created VM {zone}/{name}: {one_line(exc)}")
        if stored:
            try:
                self._delete_secret(name)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"delete the registration secret of {name}: {one_line(exc)}")
        return failures

    def _instance(self, raw: Any) -> Instance:
        zone = raw.zone.rsplit("/", 1)[-1]
        tags: dict[str, str] = {}
        for item in raw.metadata.items:
            if item.key == TAGS_METADATA:
                tags = json.loads(item.value)
        state = {"PROVISIONING": "pending", "STAGING": "pending", "RUNNING": "running", "STOPPING": "stopping",
                 "SUSPENDING": "stopping", "SUSPENDED": "stopped", "TERMINATED": "stopped",
                 "REPAIRING": "running"}.get(raw.status, "pending")
        created = datetime.fromisoformat(raw.creation_timestamp) if raw.creation_timestamp else None
        return Instance(f"{zone}/{raw.name}", tags.get(TAG_RUNNER, raw.name), zone, state, tags, created)

    def find(self, tags: dict[str, str]) -> list[Instance]:
        from google.cloud import compute_v1

        query = " AND ".join(f"labels.{label_value(k)}={label_value(v)}" for k, v in tags.items())
        request = compute_v1.AggregatedListInstancesRequest(project=self.project, filter=query)
        pages = self._call("list VMs", lambda: list(self._client("InstancesClient").aggregated_list(request=request)))
        found = []
        for scope, listing in pages:
            for raw in listing.instances:
                instance = self._instance(raw)
                if all(instance.tags.get(k) == v for k, v in tags.items()):
                    found.append(instance)
        try:
            return found + self._leftovers(tags, {i.name for i in found})
        except Exception as exc:  # noqa: BLE001 - the VMs found must still be deleted
            raise PartialListing(f"listing leftover secrets and service accounts: {one_line(exc)}", found) from None

    def _leftovers(self, tags: dict[str, str], live: set[str]) -> list[Instance]:
        """What a runner can leave without its VM, as instances in state `missing`."""
        found: list[Instance] = []
        # a registration secret without its VM: a launch interrupted between the two
        session = self._session()
        url = f"{self.secrets_endpoint}/v1/projects/{self.project}/secrets"
        flt = " AND ".join(f"labels.{label_value(k)}={label_value(v)}" for k, v in tags.items())
        listing = self._http(session.get(url, params={"filter": flt}), "list registration secrets")
        for secret in listing.get("secrets", []):
            name = secret["name"].rsplit("/", 1)[-1].removeprefix("cml-action-")
            if name not in live:
                live.add(name)
                found.append(Instance(f"secret/{name}", name, "", "missing", dict(tags)))
        # a runner's service account without its VM: the VM deleted itself, or a launch failed before creating it
        for name in self._leftover_accounts(tags):
            if name not in live:
                found.append(Instance(f"account/{name}", name, "", "missing", {TAG_RUNNER: name, **tags}))
        return found

    def state(self, instance: Instance) -> Instance:
        from google.api_core import exceptions as gexc

        if instance.state == "missing" and instance.id.startswith(_LEFTOVERS):
            return instance
        zone, name = instance.id.split("/", 1)
        try:
            raw = self._call("read the VM", lambda: self._client("InstancesClient").get(
                project=self.project, zone=zone, instance=name))
        except gexc.NotFound:
            return Instance(instance.id, instance.name, zone, "missing", instance.tags,
                            preempted=self._was_preempted(zone, name))
        current = self._instance(raw)
        return Instance(current.id, current.name, current.zone, current.state, current.tags, current.created_at,
                        preempted=self._was_preempted(zone, name) if current.state != "running" else False)

    def _was_preempted(self, zone: str, name: str) -> bool:
        from google.cloud import compute_v1

        request = compute_v1.ListZoneOperationsRequest(project=self.project, zone=zone,
                                                       filter='operationType="compute.instances.preempted"')
        ops = self._call("read preemptions", lambda: list(self._client("ZoneOperationsClient").list(request=request)))
        return any(op.target_link.rsplit("/", 1)[-1] == name for op in ops)

    def was_preempted(self, name: str) -> bool:
        """A preempted spot VM is deleted by GCE at once (termination action DELETE); its trace is the zone
        operation `compute.instances.preempted`, which outlives it."""
        from google.cloud import compute_v1

        request = compute_v1.AggregatedListGlobalOperationsRequest(
            project=self.project, filter='operationType="compute.instances.preempted"')
        pages = self._call("read preemptions", lambda: list(self._client("GlobalOperationsClient").aggregated_list(
            request=request)))
        return any(op.target_link.rsplit("/", 1)[-1] == name for _, listing in pages for op in listing.operations)

    def delete(self, instance: Instance) -> None:
        """The VM, then its registration secret: both are tried, every failure is reported in one CloudError."""
        from google.api_core import exceptions as gexc

        failures: list[str] = []
        if not instance.id.startswith(_LEFTOVERS):
            zone, name = instance.id.split("/", 1)
            try:
                self._call("delete the VM", lambda: self._client("InstancesClient").delete(
                    project=self.project, zone=zone, instance=name).result())
            except gexc.NotFound:
                pass
            except Exception as exc:  # noqa: BLE001 - the secret is still deleted below
                failures.append(one_line(exc))
        vm_left = bool(failures)
        try:
            self._delete_secret(instance.name)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"delete the registration secret of {instance.name}: {one_line(exc)}")
        if not vm_left:  # a VM that could not be deleted keeps its account, so that it can still delete itself
            try:
                self._delete_account(instance.name)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"delete the service account of {instance.name}: {one_line(exc)}")
        if failures:
            raise CloudError("; ".join(failures))


def from_env(env: Mapping[str, str], region: str) -> GcpProvider:
    return GcpProvider(env, region)


# Run on the VM (bash, as root). The metadata server gives the VM's own token, project, zone and name.
# Retried: at boot the network, the metadata server and a just-granted secret IAM binding can each lag a little.
_VM_SECRET = r'''meta=${CML_GCE_METADATA:-http://metadata.google.internal}/computeMetadata/v1
fetch() { curl -fsS --retry 8 --retry-all-errors --retry-delay 3 --max-time 30 "$@"; }
token=$(fetch -H 'Metadata-Flavor: Google' "$meta/instance/service-accounts/default/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
project=$(fetch -H 'Metadata-Flavor: Google' "$meta/project/project-id")
secret_url=@ENDPOINT@/v1/projects/$project/secrets/@SECRET@
fetch -H "Authorization: Bearer $token" "$secret_url/versions/latest:access" | python3 -c 'import base64,json,sys; print(base64.b64decode(json.load(sys.stdin)["payload"]["data"]).decode())'
# a secret left behind (the delete failed) is removed by runner-teardown / runner-sweep
curl -fsS --retry 3 --max-time 30 -X DELETE -H "Authorization: Bearer $token" "$secret_url" >/dev/null || true'''

_VM_POWEROFF = r'''meta=${CML_GCE_METADATA:-http://metadata.google.internal}/computeMetadata/v1
api=${CML_GCE_COMPUTE:-https://compute.googleapis.com}
token=$(curl -fsS -H 'Metadata-Flavor: Google' "$meta/instance/service-accounts/default/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') || token=
project=$(curl -fsS -H 'Metadata-Flavor: Google' "$meta/project/project-id") || project=
zone=$(curl -fsS -H 'Metadata-Flavor: Google' "$meta/instance/zone") || zone=
name=$(curl -fsS -H 'Metadata-Flavor: Google' "$meta/instance/name") || name=
if [ -n "$token" ] && [ -n "$name" ]; then
  curl -fsS -X DELETE -H "Authorization: Bearer $token" "$api/compute/v1/projects/$project/zones/${zone##*/}/instances/$name" >/dev/null || true
fi
shutdown -h now'''
