"""The GCP provider against the GCE stand-in: real google-cloud-compute client, real OAuth flow, real HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloud_helpers import NAME, SECRET, runner_spec
from cml_action.clouds import gcp
from cml_action.clouds.base import TAG_EXPIRES, TAG_LABEL, TAG_REPO, TAG_RUNNER, CapacityError, MachineSpec, Placement
from cml_action.errors import UserError



def spec(**changes) -> MachineSpec:
    """A dedicated service account, and a repository name that GCE labels cannot hold as it is."""
    tags = {TAG_RUNNER: NAME, TAG_LABEL: NAME, TAG_REPO: "Octo/Models", TAG_EXPIRES: "2026-11-23T12:00:00Z"}
    return runner_spec("us-central1", **{"permission_set": "runner@ml-project.iam.gserviceaccount.com", "tags": tags,
                                         **changes})


@pytest.fixture()
def provider(gcp_cloud, monkeypatch):
    monkeypatch.setenv("CML_RETRY_BACKOFF", "0.01")
    return gcp.from_env(gcp_cloud.env | {"GOOGLE_APPLICATION_CREDENTIALS": gcp_cloud.env["GOOGLE_APPLICATION_CREDENTIALS"]},
                        gcp_cloud.region)


@pytest.fixture(autouse=True)
def credentials_env(gcp_cloud, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", gcp_cloud.env["GOOGLE_APPLICATION_CREDENTIALS"])


def test_importing_the_module_does_not_import_the_sdk():
    out = subprocess.run([sys.executable, "-c", "import sys, cml_action.clouds.gcp; print('google.cloud.compute_v1' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sizes(provider):
    assert provider.native_type("m", "none", 1) == "n2-standard-8"
    assert provider.native_type("m", "l4", 1) == "g2-standard-4"
    assert provider.native_type("m", "a100", 8) == "a2-highgpu-8g"
    with pytest.raises(UserError, match="AWS-only"):
        provider.native_type("m", "a10g", 1)


def test_create_enforces_lifetime_and_deletion_and_keeps_the_secret_out_of_metadata(gcp_cloud, provider):
    zones = provider.zones("us-central1")
    assert zones == ["us-central1-a", "us-central1-b", "us-central1-c"]
    instance = provider.create(spec(), Placement(zones[0], "n1-standard-8", spot=True))
    (vm,) = gcp_cloud.instances()
    raw = vm["raw"]
    assert raw["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert raw["scheduling"]["maxRunDuration"]["seconds"] == "3600"
    assert raw["scheduling"]["provisioningModel"] == "SPOT" and raw["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert raw["guestAccelerators"][0]["acceleratorType"].endswith("nvidia-tesla-t4")
    assert raw["disks"][0]["autoDelete"] is True and raw["tags"]["items"] == ["cml-action-runner"]
    assert raw["labels"]["cml-action-repo"] == "octo-models"  # a filterable label; the exact value is in metadata
    assert vm["tags"][TAG_REPO] == "Octo/Models"
    assert SECRET not in str(raw) and "echo bootstrap" in vm["startup_script"]
    assert gcp_cloud.secrets() == {f"cml-action-{NAME}": SECRET}
    policy = gcp_cloud.standin.state.secrets[f"cml-action-{NAME}"]["policy"]
    assert policy["bindings"][0]["members"] == ["serviceAccount:runner@ml-project.iam.gserviceaccount.com"]
    assert gcp_cloud.standin.state.firewalls["cml-action-deny-ingress"]["denied"] == [{"IPProtocol": "all"}]
    assert [i.id for i in provider.find({TAG_LABEL: NAME, TAG_REPO: "Octo/Models"})] == [instance.id]
    provider.delete(instance)
    provider.delete(instance)
    assert gcp_cloud.leftovers() == []


def test_capacity_quota_and_throttling(gcp_cloud, provider):
    gcp_cloud.fail_capacity("us-central1-a")
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement("us-central1-a", "n1-standard-8", spot=True))
    assert err.value.scope == "zone" and err.value.transient
    assert gcp_cloud.leftovers() == []
    gcp_cloud.fail_quota()
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement("us-central1-b", "n1-standard-8", spot=False))
    assert err.value.scope == "region"
    assert gcp_cloud.leftovers() == []
    gcp_cloud.fail_throttle(times=2)
    assert len(provider.zones("us-central1")) == 3


def test_preemption_is_read_from_the_zone_operations(gcp_cloud, provider):
    instance = provider.create(spec(), Placement("us-central1-a", "n1-standard-8", spot=True))
    gcp_cloud.set_state(instance.id, "terminated", preempted=True)
    state = provider.state(instance)
    assert state.preempted and state.state == "missing"
    provider.delete(instance)
    assert gcp_cloud.leftovers() == []


def test_vm_snippets_read_and_destroy_the_secret_then_delete_the_vm(gcp_cloud, provider, tmp_path: Path):
    instance = provider.create(spec(), Placement("us-central1-a", "n1-standard-8", spot=False))
    gcp_cloud.standin.vm_identity.update(name=instance.name, zone="us-central1-a")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "shutdown").write_text(f'#!/bin/bash\necho "$*" > {tmp_path}/shutdown\n')
    (bin_dir / "shutdown").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CML_GCE_METADATA": gcp_cloud.standin.url,
           "CML_GCE_COMPUTE": gcp_cloud.standin.url}
    for name, snippet in (("secret", provider.secret_snippet(spec())), ("poweroff", provider.poweroff_snippet(spec()))):
        script = tmp_path / f"{name}.sh"
        script.write_text("#!/bin/bash\nset -euo pipefail\n" + snippet + "\n")
        check = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    secret_env = {**env}
    out = subprocess.run(["bash", str(tmp_path / "secret.sh")], capture_output=True, text=True, env=secret_env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == SECRET and gcp_cloud.secrets() == {}
    out = subprocess.run(["bash", str(tmp_path / "poweroff.sh")], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert gcp_cloud.instances() == [] and (tmp_path / "shutdown").read_text().strip() == "-h now"


def test_the_standin_refuses_what_the_discovery_document_does_not_allow(gcp_cloud):
    import json as _json
    import urllib.error
    import urllib.request

    from standins.gce.server import TOKEN

    req = urllib.request.Request(f"{gcp_cloud.standin.url}/compute/v1/projects/ml-project/zones/us-central1-a/instances",
                                 data=_json.dumps({"name": "x", "schedulingg": {}}).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 400
    assert "unknown field 'schedulingg'" in gcp_cloud.standin.violations[0]
    gcp_cloud.standin.violations.clear()


def _run_snippets(gcp_cloud, provider, instance, tmp_path: Path, which: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """Run the VM-side snippets as the VM `instance` (its metadata token is its own service account's)."""
    gcp_cloud.standin.vm_identity.update(name=instance.name, zone=instance.zone)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "shutdown").write_text(f'#!/bin/bash\necho "$*" > {tmp_path}/shutdown\n')
    (bin_dir / "shutdown").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CML_GCE_METADATA": gcp_cloud.standin.url,
           "CML_GCE_COMPUTE": gcp_cloud.standin.url}
    own = spec(name=instance.name, permission_set="")
    snippets = {"secret": provider.secret_snippet(own), "poweroff": provider.poweroff_snippet(own)}
    results = []
    for name in which:
        script = tmp_path / f"{name}.sh"
        script.write_text("#!/bin/bash\nset -euo pipefail\n" + snippets[name] + "\n")
        results.append(subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30))
    return results


def test_without_a_permission_set_the_vm_runs_as_its_own_account_with_no_project_role(gcp_cloud, provider, tmp_path):
    """Not the project's default compute account (often Editor): a per-runner account that may read and delete its
    own registration and delete its own instance, granted on those resources alone."""
    other_name = "cml-20261123000000-fedcba"
    other_tags = {TAG_RUNNER: other_name, TAG_LABEL: other_name, TAG_REPO: "octo/models", TAG_EXPIRES: "2026-11-23T12:00:00Z"}
    other = provider.create(spec(name=other_name, permission_set="", tags=other_tags, secret="OTHER-SECRET"),
                            Placement("us-central1-b", "n1-standard-8", spot=False))
    instance = provider.create(spec(permission_set=""), Placement("us-central1-a", "n1-standard-8", spot=False))
    email = f"{NAME}@ml-project.iam.gserviceaccount.com"
    raw = next(vm["raw"] for vm in gcp_cloud.instances() if vm["name"] == NAME)
    assert [a["email"] for a in raw["serviceAccounts"]] == [email]
    state = gcp_cloud.standin.state
    assert set(state.service_accounts) == {email, f"{other_name}@ml-project.iam.gserviceaccount.com"}
    assert state.instance_policies[("us-central1-a", NAME)]["bindings"] == [
        {"role": "roles/compute.instanceAdmin.v1", "members": [f"serviceAccount:{email}"]}]
    assert {m for b in state.secrets[f"cml-action-{NAME}"]["policy"]["bindings"] for m in b["members"]} == {
        f"serviceAccount:{email}"}

    # as that VM: its own secret is readable and deletable, then it deletes its own instance
    secret, poweroff = _run_snippets(gcp_cloud, provider, instance, tmp_path, ("secret", "poweroff"))
    assert secret.returncode == 0 and secret.stdout.strip() == SECRET, secret.stderr
    assert poweroff.returncode == 0, poweroff.stderr
    assert [vm["name"] for vm in gcp_cloud.instances()] == [other_name]
    assert gcp_cloud.standin.refused == []

    # ...but its token reaches nothing else: not the other runner's secret, not the other VM
    import urllib.error
    import urllib.request

    from standins.gce.server import VM_TOKEN_PREFIX

    headers = {"Authorization": f"Bearer {VM_TOKEN_PREFIX}{email}"}
    for method, path in (("GET", f"/v1/projects/ml-project/secrets/cml-action-{other_name}/versions/latest:access"),
                         ("DELETE", f"/compute/v1/projects/ml-project/zones/us-central1-b/instances/{other_name}")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(gcp_cloud.standin.url + path, method=method, headers=headers))
        assert err.value.code == 403
    assert len(gcp_cloud.standin.refused) == 2

    # the account of the VM that deleted itself is a leftover that teardown (find by label) removes
    (left,) = provider.find({TAG_LABEL: NAME})
    assert left.id == f"account/{NAME}" and left.state == "missing"
    provider.delete(left)
    provider.delete(other)
    assert gcp_cloud.leftovers() == []


def test_a_failed_placement_keeps_the_runner_account_for_the_next_one(gcp_cloud, provider):
    gcp_cloud.fail_capacity("us-central1-a")
    with pytest.raises(CapacityError):
        provider.create(spec(permission_set=""), Placement("us-central1-a", "n1-standard-8", spot=False))
    assert gcp_cloud.leftovers() == [f"service account {NAME}@ml-project.iam.gserviceaccount.com"]
    instance = provider.create(spec(permission_set=""), Placement("us-central1-b", "n1-standard-8", spot=False))
    assert [i.id for i in provider.find({TAG_LABEL: NAME})] == [instance.id]
    provider.delete(instance)
    assert gcp_cloud.leftovers() == []


def test_a_new_runner_account_not_yet_known_to_compute_is_waited_for(gcp_cloud, provider):
    gcp_cloud.standin.account_lag = 2  # IAM propagates a new account to Compute within seconds
    instance = provider.create(spec(permission_set=""), Placement("us-central1-a", "n1-standard-8", spot=False))
    (vm,) = gcp_cloud.instances()
    assert vm["raw"]["serviceAccounts"][0]["email"] == f"{NAME}@ml-project.iam.gserviceaccount.com"
    assert gcp_cloud.standin.account_lag == 0
    provider.delete(instance)
    assert gcp_cloud.leftovers() == []
