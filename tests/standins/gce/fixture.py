"""The `gcp_cloud` fixture: the GCE stand-in, reached by the real google-cloud-compute client through
CML_GCP_ENDPOINT, with a real service-account key whose token_uri is the stand-in's OAuth endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from standins.gce.server import PROJECT, GceStandIn

REGION = "us-central1"


def _service_account(path: Path, token_uri: str, standin: GceStandIn) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    standin.public_key = key.public_key()
    standin.service_account = f"launcher@{PROJECT}.iam.gserviceaccount.com"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "standin", "private_key": pem,
        "client_email": f"launcher@{PROJECT}.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri}))


class GcpCloud:
    cloud = "gcp"
    region = REGION

    def __init__(self, tmp: Path) -> None:
        self.standin = GceStandIn().start()
        key = tmp / "launcher-key.json"
        _service_account(key, f"{self.standin.url}/token", self.standin)
        self.env = {"CML_GCP_ENDPOINT": self.standin.url, "CML_GCP_SECRETMANAGER_ENDPOINT": self.standin.url,
                    "CML_GCP_IAM_ENDPOINT": self.standin.url,
                    "CML_GCP_PROJECT": PROJECT, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}

    def fail_capacity(self, zone: str, times: int = 1) -> None:
        self.standin.fail_insert("ZONE_RESOURCE_POOL_EXHAUSTED", f"The zone 'projects/{PROJECT}/zones/{zone}' does not "
                                 "have enough resources available to fulfill the request.", 503, zone, times)

    def fail_quota(self, times: int = 1) -> None:
        self.standin.fail_insert("QUOTA_EXCEEDED", "Quota 'NVIDIA_T4_GPUS' exceeded. Limit: 0.0 in region us-central1.",
                                 403, None, times)

    def fail_throttle(self, times: int = 1) -> None:
        self.standin.inject("*", r"^/compute/", 429, body={"error": {"code": 429, "message": "Rate Limit Exceeded",
                                                                      "status": "RESOURCE_EXHAUSTED"}}, times=times)

    def instances(self) -> list[dict]:
        out = []
        for (zone, name), inst in self.standin.state.instances.items():
            items = {i["key"]: i["value"] for i in inst.get("metadata", {}).get("items", [])}
            out.append({"id": f"{zone}/{name}", "name": name, "zone": zone, "state": inst["status"],
                        "tags": json.loads(items.get("cml-action-tags", "{}")), "startup_script": items.get("startup-script", ""),
                        "raw": inst})
        return out

    def set_state(self, instance_id: str, state: str, preempted: bool = False) -> None:
        zone, name = instance_id.split("/", 1)
        if preempted:
            self.standin.preempt(zone, name)
        else:
            self.standin.state.instances[(zone, name)]["status"] = {"stopped": "TERMINATED", "running": "RUNNING"}.get(
                state, state.upper())

    def secrets(self) -> dict[str, str]:
        return {sid: s["versions"][-1].decode() if s["versions"] else "" for sid, s in self.standin.state.secrets.items()}

    def leftovers(self) -> list[str]:
        return [f"instance {i['id']} (disk with it)" for i in self.instances()] + \
               [f"secret {sid}" for sid in self.standin.state.secrets] + \
               [f"service account {email}" for email in self.standin.state.service_accounts]

    def assert_clean(self) -> None:
        self.standin.assert_clean()


@pytest.fixture()
def gcp_cloud(tmp_path: Path) -> Iterator[GcpCloud]:
    cloud = GcpCloud(tmp_path)
    try:
        yield cloud
        cloud.assert_clean()
    finally:
        cloud.standin.stop()
