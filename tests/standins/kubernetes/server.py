"""Kubernetes' core API, as far as a runner launcher sees it: pods and secrets in namespaces, over HTTP.

What a real cluster would refuse, this one refuses too:
- every object received is validated against Kubernetes' published OpenAPI schemas (the `kubernetes-validate`
  package bundles them per version), strictly (unknown fields are errors), for the oldest and the newest version
  we claim to support, plus the API server's own checks the schemas cannot express (names, label syntax,
  extended resources, volume references, Secret data);
- requests are authorised by RBAC rules (a Role's `rules`), so a test proves the README's Role is enough;
- what it answers is validated too, so the real client is never fed a shape a cluster would not send.

Behaviour: the scheduler (scheduler.py) places a pod or marks it Unschedulable with the scheduler's message; the
kubelet (kubelet.py) runs scheduled pods as local processes, mounting Secrets, enforcing `activeDeadlineSeconds`
and filling container statuses; deleting a pod kills it and garbage-collects its dependents (objects whose
ownerReferences name its uid), as the garbage collector does with background propagation.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import kubernetes_validate

from standins.kubernetes import kubelet, scheduler
from standins.kubernetes.kubelet import Image
from standins.server import Request, Response, SpecViolation, StandIn

VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
TOKEN = "standin-launcher-token"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
STANDARD = {"cpu", "memory", "ephemeral-storage"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str) -> Response:
    return Response(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason, "code": code})


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def check_metadata(meta: dict) -> None:
    name = meta.get("name", "")
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise SpecViolation(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain is required")
    _check_labels(meta.get("labels") or {})
    annotations = meta.get("annotations") or {}
    if any(not _label_key_ok(k) for k in annotations) or sum(len(k) + len(v) for k, v in annotations.items()) > 256 * 1024:
        raise SpecViolation("metadata.annotations: Invalid value")
    if any(not ref.get("uid") or not ref.get("name") for ref in meta.get("ownerReferences") or []):
        raise SpecViolation("metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty")


def _check_labels(labels: dict) -> None:
    for key, value in labels.items():
        if not _label_key_ok(key):
            raise SpecViolation(f"metadata.labels: Invalid value: {key!r}: name part must consist of alphanumerics")
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise SpecViolation(f"metadata.labels: Invalid value: {value!r}: a valid label must be an empty string "
                                "or consist of alphanumeric characters, '-', '_' or '.', at most 63")


def _check_container(c: dict, volumes: set[str], where: str) -> None:
    if not _DNS_LABEL.match(c["name"]) or len(c["name"]) > 63:
        raise SpecViolation(f"{where}.name: Invalid value: {c['name']!r}")
    if not c.get("image"):
        raise SpecViolation(f"{where}.image: Required value")
    for env in c.get("env", []):
        if not _ENV_NAME.match(env["name"]):
            raise SpecViolation(f"{where}.env.name: Invalid value: {env['name']!r}")
    for mount in c.get("volumeMounts", []):
        if mount["name"] not in volumes:
            raise SpecViolation(f"{where}.volumeMounts.name: Not found: {mount['name']!r}")
    _check_resources(c.get("resources") or {}, where)


def _check_resources(resources: dict, where: str) -> None:
    """Quantities parse; an extended resource (nvidia.com/gpu) is a whole number, its request equal to its limit."""
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    for name, value in {**limits, **requests}.items():
        try:
            scheduler.quantity(value)
        except ValueError as exc:
            raise SpecViolation(f"{where}.resources: Invalid value: {exc}") from None
        if name in STANDARD:
            continue
        if "/" not in name:
            raise SpecViolation(f"{where}.resources: Invalid value: {name!r}: must be a standard resource")
        if name in requests and requests[name] != limits.get(name):
            raise SpecViolation(f"{where}.resources.requests[{name}]: Invalid value: must be equal to {name} limit")
        if scheduler.quantity(value) != int(scheduler.quantity(value)):
            raise SpecViolation(f"{where}.resources.limits[{name}]: must be an integer")


def check_pod(pod: dict) -> None:
    spec = pod["spec"]
    name = pod["metadata"].get("name", "")
    if len(name) > 63 or not _DNS_LABEL.match(name or "-"):
        raise SpecViolation(f"metadata.name: Invalid value: {name!r}: a pod name is used as hostname (RFC 1123 label)")
    volumes = [v["name"] for v in spec.get("volumes", [])]
    names = [c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])]
    if len(set(volumes)) != len(volumes) or len(set(names)) != len(names):
        raise SpecViolation("spec.volumes.name / spec.containers.name: Duplicate value")
    for i, c in enumerate(spec.get("initContainers", [])):
        _check_container(c, set(volumes), f"spec.initContainers[{i}]")
    for i, c in enumerate(spec["containers"]):
        _check_container(c, set(volumes), f"spec.containers[{i}]")
    _check_scheduling(spec)


def _check_scheduling(spec: dict) -> None:
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        raise SpecViolation("spec.restartPolicy: Unsupported value")
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] <= 0:
        raise SpecViolation("spec.activeDeadlineSeconds: Invalid value: must be greater than 0")
    if any(not _label_key_ok(key) for key in spec.get("nodeSelector") or {}):
        raise SpecViolation("spec.nodeSelector: Invalid value")
    for tol in spec.get("tolerations") or []:
        if tol.get("operator") == "Exists" and tol.get("value"):
            raise SpecViolation("spec.tolerations.operator: Invalid value: value must be empty when `operator` is 'Exists'")
        if tol.get("effect") and tol["effect"] not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise SpecViolation(f"spec.tolerations.effect: Unsupported value: {tol['effect']!r}")


def check_secret(secret: dict) -> None:
    for key, value in (secret.get("data") or {}).items():
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
            raise SpecViolation(f"data[{key}]: Invalid value: a valid config key must consist of alphanumerics")
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            raise SpecViolation(f"data[{key}]: illegal base64 data") from None


def validate(obj: dict, what: str) -> None:
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise SpecViolation(f"{what} does not validate against Kubernetes {version}: {path}: {exc.message}") from None


def validate_as(obj: dict, schema_name: str, what: str) -> None:
    """Like `validate`, for the types kubernetes-validate cannot find by apiVersion (DeleteOptions is meta/v1)."""
    import jsonschema
    from referencing import Registry, Resource

    from kubernetes_validate.utils import schema_contents

    for version in VERSIONS:
        folder = f"kubernetes-json-schema/v{version}-local-strict"
        schema = schema_contents(f"{folder}/{schema_name}.json", version)
        registry = Resource.from_contents(schema_contents(f"{folder}/_definitions.json", version)) @ (
            Resource.from_contents(schema) @ Registry())
        try:
            jsonschema.Draft202012Validator(schema, registry=registry).validate(obj)
        except jsonschema.ValidationError as exc:
            raise SpecViolation(f"{what} does not validate against Kubernetes {version}: {exc.message}") from None


def _selector(text: str | None) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in filter(None, (text or "").split(",")):
        if "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            out.append((key.strip(), value.strip()))
        else:
            out.append((part.strip(), None))
    return out


def _matches(obj: dict, selector: list[tuple[str, str | None]]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(key in labels and (value is None or labels[key] == value) for key, value in selector)


class KubernetesStandIn(StandIn):
    """Pods and Secrets of any namespace; nodes and images are set by the test."""

    def __init__(self, rules: list[dict] | None = None) -> None:
        super().__init__()
        self.pods: dict[tuple[str, str], dict] = {}
        self.secrets: dict[tuple[str, str], dict] = {}
        self.nodes: list[scheduler.Node] = [scheduler.Node("cpu-node-1")]
        self.images: dict[str, Image] = {}
        self.rules = rules  # None: everything allowed; else RBAC rules of a Role bound to TOKEN
        self.received: list[tuple[str, dict]] = []  # (kind, object) exactly as the client sent them
        self.denied: list[str] = []
        self._running: dict[tuple[str, str], kubelet.PodProcess] = {}
        self._sandbox = Path(tempfile.mkdtemp(prefix="k8s-standin-"))
        base = r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<kind>pods|secrets)"
        self.route("GET", base, self._list)
        self.route("POST", base, self._create)
        self.route("GET", base + r"/(?P<name>[^/]+)", self._get)
        self.route("DELETE", base + r"/(?P<name>[^/]+)", self._delete)
        self.route("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", self._log)
        self.route("GET", r"/version", lambda request: {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})

    # --- the test's controls ----------------------------------------------------------------------
    def add_node(self, node: scheduler.Node) -> None:
        """A new node (e.g. the cluster autoscaler's): pending pods are scheduled again."""
        with self.lock:
            self.nodes.append(node)
            for key, pod in list(self.pods.items()):
                if not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                    self._schedule(key, pod)

    def objects(self, kind: str) -> list[dict]:
        with self.lock:
            return list((self.pods if kind == "pods" else self.secrets).values())

    def pod(self, ns: str, name: str) -> dict | None:
        with self.lock:
            return self.pods.get((ns, name))

    def sandbox(self, pod: dict) -> Path:
        """Where the kubelet runs `pod` (its volumes, the images' files, its log)."""
        return self._sandbox / pod["metadata"]["namespace"] / pod["metadata"]["name"]

    def log_of(self, ns: str, name: str) -> str:
        state = self._running.get((ns, name))
        path = state.log if state else self._sandbox / ns / name / "log.txt"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for state in list(self._running.values()):
            state.kill(grace_s=0.5)
        super().stop()
        shutil.rmtree(self._sandbox, ignore_errors=True)

    # --- authentication and RBAC --------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != TOKEN:  # the auth scheme is case-insensitive (in-cluster: "bearer")
            return status(401, "Unauthorized", "Unauthorized")
        if self.rules is None or request.path == "/version":
            return None
        parts = request.path.split("/")  # ['', 'api', 'v1', 'namespaces', ns, resource, name?, sub?]
        ns, resource = parts[4], parts[5]
        if len(parts) > 7:
            resource += "/" + parts[7]
        verb = {"POST": "create", "DELETE": "delete", "PATCH": "patch", "PUT": "update"}.get(request.method, "")
        if request.method == "GET":
            verb = "watch" if request.arg("watch") in ("true", "1") else ("get" if len(parts) > 6 else "list")
        for rule in self.rules:
            if "" in rule.get("apiGroups", []) and resource in rule.get("resources", []) and verb in rule.get("verbs", []):
                return None
        self.denied.append(f"{verb} {resource}")
        return status(403, "Forbidden", f'{resource} is forbidden: User "system:serviceaccount:ci:launcher" cannot '
                                        f'{verb} resource "{resource}" in API group "" in the namespace "{ns}"')

    # --- API ----------------------------------------------------------------------------------------
    def check(self, request: Request, handler: Any, groups: dict[str, str]) -> None:
        if request.method == "POST":
            body = request.json()
            kind = {"pods": "Pod", "secrets": "Secret"}[groups["kind"]]
            if not isinstance(body, dict) or body.get("kind") != kind or body.get("apiVersion") != "v1":
                raise SpecViolation(f"expected a v1 {kind}, got {body.get('apiVersion')}/{body.get('kind')}")
            if body["metadata"].get("namespace", groups["ns"]) != groups["ns"]:
                raise SpecViolation("the namespace of the provided object does not match the namespace sent on the request")
            validate(body, kind)
            check_metadata(body["metadata"])
            (check_pod if kind == "Pod" else check_secret)(body)
        if request.method == "DELETE" and request.body:
            body = request.json()
            validate_as(body, "deleteoptions-meta-v1", "DeleteOptions")

    def _store(self, kind: str) -> dict[tuple[str, str], dict]:
        return self.pods if kind == "pods" else self.secrets

    def _list(self, request: Request, ns: str, kind: str) -> Any:
        selector = _selector(request.arg("labelSelector"))
        items = [o for (n, _), o in self._store(kind).items() if n == ns and _matches(o, selector)]
        return {"kind": "PodList" if kind == "pods" else "SecretList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"}, "items": items}

    def _get(self, request: Request, ns: str, kind: str, name: str) -> Any:
        obj = self._store(kind).get((ns, name))
        return obj if obj is not None else status(404, "NotFound", f'{kind} "{name}" not found')

    def _create(self, request: Request, ns: str, kind: str) -> Any:
        body = request.json()
        self.received.append((body["kind"], body))
        name = body["metadata"]["name"]
        if (ns, name) in self._store(kind):
            return status(409, "AlreadyExists", f'{kind} "{name}" already exists')
        obj = {**body, "metadata": {**body["metadata"], "namespace": ns, "uid": str(uuid.uuid4()),
                                    "resourceVersion": "1", "creationTimestamp": _now()}}
        self._store(kind)[(ns, name)] = obj
        if kind == "pods":
            obj["spec"].setdefault("serviceAccountName", "default")
            obj["status"] = {"phase": "Pending", "qosClass": "Burstable"}
            self._schedule((ns, name), obj)
        else:
            self._collect_garbage()
        validate(obj, obj["kind"] + " (the stand-in's own answer)")
        return Response(201, obj)

    def _delete(self, request: Request, ns: str, kind: str, name: str) -> Any:
        obj = self._store(kind).pop((ns, name), None)
        if obj is None:
            return status(404, "NotFound", f'{kind} "{name}" not found')
        if kind == "pods":
            state = self._running.pop((ns, name), None)
            if state is not None:
                threading.Thread(target=state.kill, daemon=True).start()
            obj["metadata"]["deletionTimestamp"] = _now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
        self._collect_garbage()
        return obj

    def _log(self, request: Request, ns: str, name: str) -> Any:
        if (ns, name) not in self.pods:
            return status(404, "NotFound", f'pods "{name}" not found')
        return Response(200, self.log_of(ns, name))

    def _collect_garbage(self) -> None:
        """Background propagation: an object all of whose owners are gone is deleted (at once, here)."""
        live = {o["metadata"]["uid"] for o in [*self.pods.values(), *self.secrets.values()]}
        for key, secret in list(self.secrets.items()):
            owners = secret["metadata"].get("ownerReferences") or []
            if owners and not any(ref["uid"] in live for ref in owners):
                del self.secrets[key]

    # --- scheduling and the kubelet ----------------------------------------------------------------
    def _usage(self) -> dict[str, dict]:
        usage: dict[str, dict] = {}
        for pod in self.pods.values():
            node = pod["spec"].get("nodeName")
            if node and pod["status"]["phase"] in ("Pending", "Running"):
                for res, amount in scheduler.pod_requests(pod["spec"]).items():
                    usage.setdefault(node, {}).setdefault(res, 0)
                    usage[node][res] += amount
        return usage

    def _schedule(self, key: tuple[str, str], pod: dict) -> None:
        node, message = scheduler.schedule(pod["spec"], self.nodes, self._usage())
        if not node:
            pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": message, "lastTransitionTime": _now()}]
            return
        pod["spec"]["nodeName"] = node
        pod["status"].update({"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()}],
                              "hostIP": "10.0.0.2", "startTime": _now()})
        pod["status"]["containerStatuses"] = [self._waiting(c, "ContainerCreating") for c in pod["spec"]["containers"]]
        state = kubelet.PodProcess(self._sandbox / key[0] / key[1])
        state.root.mkdir(parents=True, exist_ok=True)
        self._running[key] = state
        threading.Thread(target=self._kubelet, args=(key, pod, state), daemon=True).start()

    @staticmethod
    def _waiting(container: dict, reason: str, message: str = "") -> dict:
        waiting = {"reason": reason, **({"message": message} if message else {})}
        return {"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                "restartCount": 0, "started": False, "state": {"waiting": waiting}}

    def _set(self, key: tuple[str, str], **status_fields: Any) -> dict | None:
        with self.lock:
            pod = self.pods.get(key)
            if pod is not None:
                pod["status"].update(status_fields)
            return pod

    def _kubelet(self, key: tuple[str, str], pod: dict, state: kubelet.PodProcess) -> None:
        spec = pod["spec"]
        deadline = spec.get("activeDeadlineSeconds")
        if deadline:
            timer = threading.Timer(deadline, self._deadline, args=(key, state))
            timer.daemon = True  # a pod's deadline never keeps the test process alive
            timer.start()
        missing = [c for c in spec.get("initContainers", []) + spec["containers"] if c["image"] not in self.images]
        if missing:
            c = missing[0]
            self._set(key, containerStatuses=[self._waiting(c, "ErrImagePull", f'failed to pull image "{c["image"]}": not found')])
            return

        def ready() -> bool:
            with self.lock:
                return not kubelet.prepare_volumes(pod, state.root, {n: s for (ns, n), s in self.secrets.items()
                                                                     if ns == key[0]})
        if not kubelet.wait_for(ready, state.stopped, timeout_s=600):
            return
        for container in spec.get("initContainers", []):
            code, message = kubelet.run_container(pod, container, state, self.images, lambda: None)
            if state.stopped.is_set():
                return
            if code != 0:
                self._finish(key, "Failed", container, code, message, init=True)
                return
        main = spec["containers"][0]

        def running() -> None:
            self._set(key, phase="Running", containerStatuses=[{
                "name": main["name"], "image": main["image"], "imageID": f"{main['image']}@sha256:{'0' * 64}",
                "ready": True, "restartCount": 0, "started": True, "state": {"running": {"startedAt": _now()}}}])
        code, message = kubelet.run_container(pod, main, state, self.images, running)
        if not state.stopped.is_set():
            self._finish(key, "Succeeded" if code == 0 else "Failed", main, code, message)

    def _finish(self, key: tuple[str, str], phase: str, container: dict, code: int, message: str,
                init: bool = False, reason: str = "") -> None:
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": _now(),
                      **({"message": message} if message else {})}
        entry = {"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                 "restartCount": 0, "started": False, "state": {"terminated": terminated}}
        fields: dict[str, Any] = {"phase": phase, ("initContainerStatuses" if init else "containerStatuses"): [entry]}
        if reason:
            fields.update(reason=reason, message="Pod was active on the node longer than the specified deadline")
        self._set(key, **fields)

    def _deadline(self, key: tuple[str, str], state: kubelet.PodProcess) -> None:
        with self.lock:
            pod = self.pods.get(key)
            if pod is None or pod["status"]["phase"] not in ("Pending", "Running"):
                return
        state.kill(grace_s=1)
        main = pod["spec"]["containers"][0]
        self._finish(key, "Failed", main, 137, "", reason="DeadlineExceeded")
