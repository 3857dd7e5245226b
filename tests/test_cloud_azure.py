"""The Azure provider against the ARM stand-in over TLS: real azure-identity token flow, real azure-mgmt clients."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cml_action.clouds import azure
from cml_action.clouds.base import TAG_EXPIRES, TAG_LABEL, TAG_REPO, TAG_RUNNER, CapacityError, MachineSpec, Placement
from cml_action.errors import UserError
from standins.arm.fixture import azure_cloud  # noqa: F401

NAME = "cml-20261123000000-abcdef"
SECRET = "ENCODED-JIT-CONFIG-single-use"


def spec(**changes) -> MachineSpec:
    base = dict(name=NAME, region="westeurope", gpu="t4", gpu_count=1, image="", disk_gb=128, subnet="",
                permission_set="", tags={TAG_RUNNER: NAME, TAG_LABEL: NAME, TAG_REPO: "octo/models",
                                         TAG_EXPIRES: "2026-11-23T12:00:00Z"},
                startup_script="#!/bin/bash\necho bootstrap\n", secret=SECRET, max_lifetime_s=3600)
    base.update(changes)
    return MachineSpec(**base)


@pytest.fixture()
def provider(azure_cloud, monkeypatch):
    monkeypatch.setenv("CML_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", azure_cloud.cert)
    return azure.from_env(azure_cloud.env, azure_cloud.region)


def test_importing_the_module_does_not_import_the_sdk():
    out = subprocess.run([sys.executable, "-c", "import sys, cml_action.clouds.azure; print(any(m.startswith('azure.') for m in sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sizes(provider):
    assert provider.native_type("m", "t4", 1) == "Standard_NC4as_T4_v3"
    assert provider.native_type("m", "none", 1) == "Standard_D8s_v5"
    with pytest.raises(UserError, match="retired"):
        provider.native_type("m", "v100", 1)


def test_one_resource_group_per_runner_with_a_self_deleting_identity(azure_cloud, provider):
    instance = provider.create(spec(), Placement("1", "Standard_NC4as_T4_v3", spot=True))
    (group,) = azure_cloud.standin.groups.values()
    assert group.name == f"cml-action-{NAME}" and group.tags[TAG_LABEL] == NAME
    (vm,) = azure_cloud.instances()
    props = vm["raw"]["properties"]
    assert props["priority"] == "Spot" and props["evictionPolicy"] == "Delete"
    assert props["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    assert "echo bootstrap" in vm["startup_script"] and SECRET not in vm["startup_script"]
    role = next(r for k, r in group.resources.items() if k.startswith("roleAssignments/"))
    assert role["properties"]["scope"] == f"/subscriptions/{azure.CONTRIBUTOR and azure_cloud.env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{group.name}"
    assert role["properties"]["principalId"] == vm["raw"]["identity"]["principalId"]
    nsg = next(r for k, r in group.resources.items() if k.startswith("networkSecurityGroups/"))
    assert nsg["properties"]["securityRules"] == []  # nothing inbound
    # the secret travels only in protectedSettings
    (handover,) = azure_cloud.secrets().values()
    assert SECRET in handover and SECRET not in str(vm["raw"])
    assert [i.id for i in provider.find({TAG_LABEL: NAME})] == [instance.id]
    assert provider.state(instance).state == "running"
    provider.delete(instance)
    provider.delete(instance)
    assert azure_cloud.leftovers() == []


def test_capacity_quota_throttling_and_no_leftovers(azure_cloud, provider):
    azure_cloud.fail_capacity("1")
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement("1", "Standard_NC4as_T4_v3", spot=False))
    assert err.value.scope == "zone"
    assert azure_cloud.leftovers() == []
    azure_cloud.fail_quota()
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement("2", "Standard_NC4as_T4_v3", spot=False))
    assert err.value.scope == "region"
    assert azure_cloud.leftovers() == []
    azure_cloud.fail_throttle(times=2)
    instance = provider.create(spec(), Placement("2", "Standard_NC4as_T4_v3", spot=False))
    provider.delete(instance)
    assert azure_cloud.leftovers() == []


def test_an_evicted_spot_vm_is_reported_preempted(azure_cloud, provider):
    instance = provider.create(spec(), Placement("1", "Standard_NC4as_T4_v3", spot=True))
    azure_cloud.set_state(instance.id, "deallocated", preempted=True)
    assert provider.state(instance).preempted
    provider.delete(instance)
    assert azure_cloud.leftovers() == []


def test_power_off_deletes_the_runners_group(azure_cloud, provider, tmp_path: Path):
    instance = provider.create(spec(gpu="none"), Placement("1", "Standard_D8s_v5", spot=False))
    azure_cloud.standin.vm_identity["group"] = instance.id
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "shutdown").write_text(f'#!/bin/bash\necho "$*" > {tmp_path}/shutdown\n')
    (bin_dir / "shutdown").chmod(0o755)
    script = tmp_path / "poweroff.sh"
    script.write_text("#!/bin/bash\nset -euo pipefail\n" + provider.poweroff_snippet(spec()) + "\n")
    assert subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True).returncode == 0
    secret = tmp_path / "secret.sh"
    secret.write_text("#!/bin/bash\nset -euo pipefail\n" + provider.secret_snippet(spec()) + "\n")
    assert subprocess.run(["shellcheck", "-s", "bash", str(secret)], capture_output=True).returncode == 0
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CML_AZURE_IMDS": azure_cloud.standin.url,
           "CML_AZURE_ARM": azure_cloud.standin.url, "CURL_CA_BUNDLE": azure_cloud.cert}
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert azure_cloud.leftovers() == [] and (tmp_path / "shutdown").read_text().strip() == "-h now"
