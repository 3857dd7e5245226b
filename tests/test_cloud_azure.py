"""The Azure provider against the ARM stand-in over TLS: the real azure-identity token flow and the real azure-mgmt
clients, long-running operations polled as in Azure; the VM-side snippets executed with bash against its IMDS."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from standins.arm.fixture import azure_cloud  # noqa: F401
from standins.arm.server import CONTRIBUTOR, SUB

from cloud_helpers import NAME, SECRET, runner_spec
from cml_action.clouds import azure
from cml_action.clouds.base import TAG_LABEL, TAG_REPO, TAG_RUNNER, CapacityError, MachineSpec, Placement
from cml_action.errors import CloudError, UserError

T4 = Placement("1", "Standard_NC4as_T4_v3", spot=True)


def spec(**changes) -> MachineSpec:
    return runner_spec("westeurope", **changes)


@pytest.fixture()
def provider(azure_cloud):
    return azure.from_env({**azure_cloud.env, "CML_RETRY_BACKOFF": "0.01"}, azure_cloud.region)


def puts(cloud, fragment: str) -> list[dict]:
    return [e.json() for e in cloud.standin.requests if e.method == "PUT" and fragment in e.path]


def shellcheck(tmp_path: Path, snippet: str) -> None:
    """Embedded as the bootstrap embeds it: in a function of a bash script."""
    script = tmp_path / "check.sh"
    script.write_text(f"#!/bin/bash\nset -euo pipefail\nf() {{\n{snippet}\n}}\nf\n")
    out = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout


def test_importing_the_module_does_not_import_the_sdk():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cml_action.clouds.azure"],
                         capture_output=True, text=True, check=True)
    modules = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line]
    assert "cml_action.clouds.azure" in modules
    assert not [m for m in modules if m.startswith(("azure", "msal", "cryptography", "requests"))]


def test_sizes_are_current_and_unknown_gpus_name_the_choices(provider):
    assert provider.native_type("m", "none", 1) == azure.SIZES["m"] == "Standard_D8s_v5"
    assert provider.native_type("m", "t4", 1) == "Standard_NC4as_T4_v3"
    assert provider.native_type("m", "a100", 4) == "Standard_NC96ads_A100_v4"
    assert provider.native_type("m", "h100", 1) == "Standard_NC40ads_H100_v5"
    assert provider.native_type("Standard_NC8as_T4_v3", "t4", 1) == "Standard_NC8as_T4_v3"  # native passes through
    assert set(azure.GPUS) == {"t4", "a10g", "a100", "h100"}
    for gpu, why in (("v100", "retired"), ("l4", "no L4")):
        with pytest.raises(UserError, match=why) as err:
            provider.native_type("m", gpu, 1)
        assert "t4, a10g, a100, h100" in str(err.value)
    with pytest.raises(UserError, match="1, 4 GPUs"):
        provider.native_type("m", "t4", 2)


def test_zones_come_from_the_subscriptions_regions(provider):
    assert provider.zones("westeurope") == ["1", "2", "3"]
    assert provider.zones("northcentralus") == [""]  # no zones: regional placement
    with pytest.raises(UserError, match="northcentralus, westeurope"):
        provider.zones("atlantis")


def test_create_one_resource_group_per_runner_tagged_encrypted_closed_and_self_deleting(azure_cloud, provider):
    before = datetime.now(timezone.utc)
    instance = provider.create(spec(), T4)
    group = f"cml-action-{NAME}"
    assert instance.id == group and instance.zone == "1"
    # tags on everything that can carry them (role assignments cannot)
    bodies = [e for e in azure_cloud.standin.requests if e.method == "PUT" and "roleAssignments" not in e.path]
    assert len(bodies) == 7  # group, NSG, VNet, NIC, VM, shutdown schedule, registration extension
    assert all(e.json()["tags"][TAG_LABEL] == NAME and e.json()["tags"][TAG_REPO] == "octo/models" for e in bodies)
    # no public IP, no inbound rule, outbound through the subnet's explicit default outbound access
    assert not puts(azure_cloud, "publicIPAddresses")
    assert puts(azure_cloud, "networkSecurityGroups")[0]["properties"]["securityRules"] == []
    (vnet,) = puts(azure_cloud, "virtualNetworks")
    assert vnet["properties"]["subnets"][0]["properties"]["defaultOutboundAccess"] is True
    (nic,) = puts(azure_cloud, "networkInterfaces")
    assert "publicIPAddress" not in nic["properties"]["ipConfigurations"][0]["properties"]
    (vm,) = [e.json() for e in azure_cloud.standin.requests if e.method == "PUT" and e.path.endswith(f"/virtualMachines/{NAME}")]
    props = vm["properties"]
    assert props["priority"] == "Spot" and props["evictionPolicy"] == "Delete" and props["billingProfile"]["maxPrice"] == -1
    assert props["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert props["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"] == "Delete"
    assert props["securityProfile"]["encryptionAtHost"] is True
    assert props["storageProfile"]["imageReference"] == dict(zip(("publisher", "offer", "sku", "version"),
                                                                 azure.IMAGE_CUDA.split(":")))
    assert vm["identity"]["type"] == "SystemAssigned" and vm["zones"] == ["1"]
    assert base64.b64decode(props["osProfile"]["customData"]).decode() == spec().startup_script
    # the power-off guarantee: Contributor for the VM's own identity on its own group, nothing wider
    (vm_now,) = azure_cloud.instances()
    roles = [r for k, r in azure_cloud.standin.groups[group].resources.items() if k.startswith("roleAssignments/")]
    assert [(r["properties"]["scope"], r["properties"]["principalId"], r["properties"]["roleDefinitionId"].rsplit("/", 1)[1])
            for r in roles] == [(f"/subscriptions/{SUB}/resourceGroups/{group}", vm_now["raw"]["identity"]["principalId"],
                                 CONTRIBUTOR)]
    # the lifetime, enforced by Azure's clock too
    (schedule,) = puts(azure_cloud, "Microsoft.DevTestLab/schedules/shutdown-computevm-" + NAME)
    expected = before + timedelta(seconds=3600 + 60)
    assert schedule["properties"]["dailyRecurrence"]["time"] in {(expected + timedelta(minutes=d)).strftime("%H%M")
                                                                 for d in (0, 1)}
    assert schedule["properties"]["targetResourceId"].endswith(f"/virtualMachines/{NAME}")
    # the secret lives only in the extension's protected settings, which no API returns
    ((where, command),) = azure_cloud.secrets().items()
    assert where == f"extensions/{NAME}/{azure.REGISTRATION_EXTENSION}" and SECRET in command
    for entry in azure_cloud.standin.requests:
        if azure.REGISTRATION_EXTENSION not in entry.path or entry.method != "PUT":
            assert SECRET.encode() not in entry.body, entry.path
    assert SECRET not in json.dumps(vm_now["raw"]["properties"]) and SECRET not in vm_now["startup_script"]
    # found by its tags, running
    (found,) = provider.find({TAG_LABEL: NAME})
    assert (found.id, found.name, found.state, found.preempted) == (group, NAME, "running", False)
    assert provider.find({TAG_LABEL: "cml-20990101000000-ffffff"}) == []


def test_delete_takes_everything_and_is_idempotent(azure_cloud, provider):
    instance = provider.create(spec(gpu="none"), Placement("2", "Standard_D8s_v5", spot=False))
    (vm,) = azure_cloud.instances()
    assert vm["raw"]["properties"]["storageProfile"]["imageReference"]["offer"] == "ubuntu-24_04-lts"
    assert "priority" not in vm["raw"]["properties"]
    assert any(k.startswith("disks/") for k in azure_cloud.standin.groups[instance.id].resources)
    provider.delete(instance)
    assert azure_cloud.leftovers() == []
    provider.delete(instance)
    assert provider.find({TAG_LABEL: NAME}) == []
    assert provider.state(instance).state == "terminated"


def test_states_power_and_preemption(azure_cloud, provider):
    instance = provider.create(spec(), T4)
    azure_cloud.set_state(instance.id, "deallocated")
    assert provider.state(instance).state == "stopped"
    azure_cloud.set_state(instance.id, "terminated", preempted=True)  # spot eviction, policy Delete
    current = provider.state(instance)
    assert (current.state, current.preempted) == ("missing", True)
    assert azure_cloud.leftovers() and not any(line.startswith(("virtualMachines/", "disks/", "networkInterfaces/"))
                                               for line in azure_cloud.leftovers())
    (found,) = provider.find({TAG_RUNNER: NAME})
    assert found.preempted
    provider.delete(instance)
    assert azure_cloud.leftovers() == []


def test_a_vm_that_deleted_its_group_is_not_preempted(azure_cloud, provider):
    instance = provider.create(spec(), T4)
    azure_cloud.set_state(instance.id, "terminated")  # what the power-off does: its group is being deleted
    assert [(i.state, i.preempted) for i in provider.find({TAG_LABEL: NAME})] == [("terminated", False)]
    deadline = time.monotonic() + 5
    while provider.state(instance).state != "terminated" and time.monotonic() < deadline:
        time.sleep(0.05)  # the VM runs on while Azure works through the group
    current = provider.state(instance)
    assert (current.state, current.preempted) == ("terminated", False)
    assert provider.find({TAG_LABEL: NAME}) == []


def test_zone_capacity_quota_and_unavailable_sizes_are_classified_and_leave_nothing(azure_cloud, provider):
    azure_cloud.fail_capacity("1")
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), T4)
    assert (err.value.scope, err.value.transient, err.value.code) == ("zone", True, "ZonalAllocationFailed")
    assert azure_cloud.leftovers() == []  # the VM that failed allocation (state Failed) went with its group
    azure_cloud.fail_quota()
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement("2", "Standard_NC4as_T4_v3", spot=False))
    assert (err.value.scope, err.value.transient) == ("region", False)
    azure_cloud.fail_sku()
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), T4)
    assert (err.value.scope, err.value.code) == ("type", "SkuNotAvailable")
    azure_cloud.fail_sku(zone="3")
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement("3", "Standard_NC4as_T4_v3", spot=True))
    assert err.value.scope == "zone"
    assert azure_cloud.leftovers() == []


def test_throttling_is_retried_with_backoff(azure_cloud, provider):
    azure_cloud.fail_throttle(times=3)
    instance = provider.create(spec(), T4)
    assert [e.status for e in azure_cloud.standin.requests].count(429) == 3
    provider.delete(instance)
    assert azure_cloud.leftovers() == []


def test_failure_half_way_leaves_nothing(azure_cloud, provider):
    azure_cloud.standin.inject("PUT", r"/extensions/" + azure.REGISTRATION_EXTENSION, 409,
                               body={"error": {"code": "OperationNotAllowed", "message": "extension refused"}})
    with pytest.raises(CloudError, match="OperationNotAllowed extension refused") as err:
        provider.create(spec(), T4)
    assert not isinstance(err.value, CapacityError)
    assert azure_cloud.leftovers() == [] and azure_cloud.secrets() == {}


def test_slow_directory_replication_and_unregistered_encryption_at_host(azure_cloud, provider):
    azure_cloud.standin.principal_not_found = 2
    azure_cloud.standin.encryption_at_host_registered = False
    instance = provider.create(spec(), T4)
    (vm,) = azure_cloud.instances()
    assert "securityProfile" not in vm["raw"]["properties"]  # platform-managed encryption at rest remains
    roles = [e for e in azure_cloud.standin.requests if "roleAssignments" in e.path]
    assert [e.status for e in roles] == [400, 400, 201]
    provider.delete(instance)


def test_bad_credentials_and_options_are_user_errors(azure_cloud, provider):
    wrong = azure.from_env({**azure_cloud.env, "AZURE_CLIENT_SECRET": "nope", "CML_RETRY_BACKOFF": "0.01"}, "westeurope")
    with pytest.raises(UserError, match="credentials"):
        wrong.find({TAG_LABEL: NAME})
    for change, message in ((dict(subnet="subnet-1"), "subnet resource id"), (dict(image="ubuntu"), "image URN"),
                            (dict(permission_set="my-identity"), "user-assigned managed identity")):
        with pytest.raises(UserError, match=message):
            provider.create(spec(**change), T4)
    assert not [e for e in azure_cloud.standin.requests if e.method == "PUT"]  # refused before anything exists
    with pytest.raises(UserError, match="AZURE_SUBSCRIPTION_ID"):
        azure.from_env({k: v for k, v in azure_cloud.env.items() if k != "AZURE_SUBSCRIPTION_ID"}, "westeurope").find({})


def test_an_existing_subnet_and_a_user_assigned_identity(azure_cloud, provider):
    subnet = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/corp/subnets/nat"
    identity = f"/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/job"
    instance = provider.create(spec(subnet=subnet, permission_set=identity, image="Canonical:ubuntu-24_04-lts:server:latest"),
                               Placement("", "Standard_NC4as_T4_v3", spot=False))
    assert not puts(azure_cloud, "virtualNetworks")
    (nic,) = puts(azure_cloud, "networkInterfaces")
    assert nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] == subnet
    (vm,) = azure_cloud.instances()
    assert vm["raw"]["identity"]["type"] == "SystemAssigned, UserAssigned" and "zones" not in vm["raw"]
    assert vm["raw"]["properties"]["storageProfile"]["imageReference"]["publisher"] == "Canonical"
    provider.delete(instance)


def test_grid_sizes_start_the_bootstrap_after_the_driver_extension(azure_cloud, provider, tmp_path: Path):
    provider.create(spec(gpu="a10g"), Placement("1", "Standard_NV36ads_A10_v5", spot=False))
    (driver,) = puts(azure_cloud, "/extensions/" + azure.DRIVER_EXTENSION)
    assert driver["properties"]["publisher"] == "Microsoft.HpcCompute"
    (registration,) = puts(azure_cloud, "/extensions/" + azure.REGISTRATION_EXTENSION)
    assert registration["properties"]["provisionAfterExtensions"] == [azure.DRIVER_EXTENSION]
    (vm,) = azure_cloud.instances()
    assert vm["raw"]["properties"]["storageProfile"]["imageReference"]["publisher"] == "Canonical"
    # custom data only stores the bootstrap (a driver reboot would kill it); the extension starts it
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemd-run").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/started\n')
    (bin_dir / "systemd-run").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CML_AZURE_STATE_DIR": str(tmp_path / "state")}
    subprocess.run(["bash", "-c", vm["startup_script"]], env=env, check=True, timeout=10)
    assert (tmp_path / "state/bootstrap.sh").read_text() == spec().startup_script
    assert not (tmp_path / "started").exists()
    (script,) = azure_cloud.secrets().values()  # the extension's protected script, as the VM runs it
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=10)
    assert (tmp_path / "started").read_text().split()[-1] == str(tmp_path / "state/bootstrap.sh")
    assert (tmp_path / "state/registration").read_text() == SECRET
    assert oct((tmp_path / "state/registration").stat().st_mode & 0o777) == "0o600"


def test_secret_snippet_hands_over_once_and_forgets_at_the_source(azure_cloud, provider, tmp_path: Path):
    instance = provider.create(spec(), T4)
    shellcheck(tmp_path, provider.secret_snippet(spec()))
    azure_cloud.standin.vm.update(group=instance.id, name=NAME)  # the snippet "runs on" this VM
    state = tmp_path / "state"
    env = {"PATH": "/usr/bin:/bin", "CML_AZURE_STATE_DIR": str(state), "CML_AZURE_IMDS": azure_cloud.standin.url,
           "CML_AZURE_ARM": azure_cloud.standin.url, "CURL_CA_BUNDLE": azure_cloud.cert}
    (command,) = azure_cloud.secrets().values()
    subprocess.run(["sh", "-c", command], env=env, check=True, timeout=10)  # what the extension runs on the VM
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    out = subprocess.run(["bash", "-c", f"set -euo pipefail\nf() {{\n{provider.secret_snippet(spec())}\n}}\nf"],
                         env=env, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == SECRET
    assert list(state.iterdir()) == []  # shredded on the VM
    assert azure_cloud.secrets() == {}  # and the extension that carried it is gone from Azure


def test_power_off_deletes_the_runners_group_with_the_vms_identity(azure_cloud, provider, tmp_path: Path):
    instance = provider.create(spec(gpu="none"), Placement("1", "Standard_D8s_v5", spot=False))
    shellcheck(tmp_path, provider.poweroff_snippet(spec()))
    azure_cloud.standin.vm.update(group=instance.id, name=NAME)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "shutdown").write_text(f'#!/bin/bash\necho "$*" > {tmp_path}/shutdown\n')
    (bin_dir / "shutdown").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CML_AZURE_IMDS": azure_cloud.standin.url,
           "CML_AZURE_ARM": azure_cloud.standin.url, "CURL_CA_BUNDLE": azure_cloud.cert}
    out = subprocess.run(["bash", "-c", provider.poweroff_snippet(spec())], capture_output=True, text=True, env=env,
                         timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "shutdown").read_text().strip() == "-h now"
    deletes = [e for e in azure_cloud.standin.requests if e.method == "DELETE"]
    assert [(e.status, e.headers["authorization"].startswith("Bearer eyJ.vm-identity.")) for e in deletes] == [(202, True)]
    deadline = time.monotonic() + 5
    while azure_cloud.leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert azure_cloud.leftovers() == []


def test_the_vms_identity_cannot_touch_other_groups(azure_cloud, provider, tmp_path: Path):
    first = provider.create(spec(gpu="none"), Placement("1", "Standard_D8s_v5", spot=False))
    other = "cml-20261123000000-bbbbbb"
    provider.create(spec(gpu="none", name=other, tags={**spec().tags, TAG_LABEL: other, TAG_RUNNER: other}),
                    Placement("1", "Standard_D8s_v5", spot=False))
    azure_cloud.standin.vm.update(group=first.id, name=NAME)
    env = {"PATH": "/usr/bin:/bin", "CURL_CA_BUNDLE": azure_cloud.cert, "ARM": azure_cloud.standin.url}
    imds = f"{azure_cloud.standin.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={azure_cloud.standin.url}/"
    token = json.loads(subprocess.run(["curl", "-fsS", "-H", "Metadata: true", imds], env=env, capture_output=True,
                                      check=True).stdout)["access_token"]
    target = f"{azure_cloud.standin.url}/subscriptions/{SUB}/resourceGroups/cml-action-{other}?api-version=2025-04-01"
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-H",
                          f"Authorization: Bearer {token}", target], env=env, capture_output=True, text=True, check=True)
    assert out.stdout == "403"
    assert len(azure_cloud.instances()) == 2
    for group in list(azure_cloud.standin.groups.values()):
        provider.delete(azure.Instance(group.name, "", "", "running", {}))
    assert azure_cloud.leftovers() == []
    assert os.environ.get("CML_AZURE_IMDS") is None  # nothing leaked into the test process


def test_the_standin_refuses_what_azure_would_refuse(azure_cloud):
    """The checks that keep the tests above honest can fail."""
    import ssl
    import urllib.error
    import urllib.request

    from standins.arm.server import TOKEN
    from standins.arm.shapes import problems

    vm = {"location": "westeurope", "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}, "priority": "Cheap",
                                                    "storageProfile": {"osDisk": {"createOption": "FromImage",
                                                                                  "deleteOptions": "Delete"}}}}
    assert problems("virtualMachine", vm) == [
        "virtualMachine: unknown property 'properties.storageProfile.osDisk.deleteOptions'",
        "virtualMachine: properties.priority must be one of ['Low', 'Regular', 'Spot'], got 'Cheap'"]
    context = ssl.create_default_context(cafile=azure_cloud.cert)
    base = f"{azure_cloud.standin.url}/subscriptions/{SUB}/resourcegroups/g"
    for query, body in (("2019-01-01", {"location": "westeurope"}), ("2025-04-01", {"location": "westeurope", "colour": 1})):
        request = urllib.request.Request(f"{base}?api-version={query}", json.dumps(body).encode(), method="PUT",
                                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, context=context)
        assert err.value.code == 400
    assert len(azure_cloud.standin.violations) == 2
    assert "not a published version" in azure_cloud.standin.violations[0]
    assert "unknown property 'colour'" in azure_cloud.standin.violations[1]
    azure_cloud.standin.violations.clear()
    assert azure_cloud.leftovers() == []
