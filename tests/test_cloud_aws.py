"""The AWS provider against moto's server (through the fault proxy): real boto3, real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cloud_helpers import NAME, SECRET, runner_spec
from cml_action.clouds import aws
from cml_action.clouds.base import TAG_LABEL, TAG_RUNNER, CapacityError, MachineSpec, Placement
from cml_action.errors import UserError



def spec(**changes) -> MachineSpec:
    return runner_spec("us-west-2", **changes)


@pytest.fixture()
def provider(aws_cloud, monkeypatch):
    monkeypatch.setenv("CML_RETRY_BACKOFF", "0.01")
    return aws.from_env(aws_cloud.env, aws_cloud.region)


def test_importing_the_module_does_not_import_boto3():
    out = subprocess.run([sys.executable, "-c", "import sys, cml_action.clouds.aws; print('boto3' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sizes_and_gpus_map_to_current_types(provider):
    assert provider.native_type("m", "none", 1) == "m7i.2xlarge"
    assert provider.native_type("s", "t4", 1) == "g4dn.xlarge"
    assert provider.native_type("m", "a100", 8) == "p4d.24xlarge"
    assert provider.native_type("c7i.large", "none", 1) == "c7i.large"
    with pytest.raises(UserError, match="not offered on AWS"):
        provider.native_type("m", "k80", 1)
    import botocore.session

    known = set(botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum)
    for table in (aws.SIZES, aws.GPUS, *aws.GPU_SIZES.values(), *aws.MULTI_GPU.values()):
        assert set(table.values()) <= known  # every type exists in EC2's own API description


def test_create_is_safe_by_construction_and_delete_leaves_nothing(aws_cloud, provider):
    zone = provider.zones("us-west-2")[0]
    instance = provider.create(spec(), Placement(zone, "g4dn.xlarge", spot=False))
    (vm,) = aws_cloud.instances()
    assert vm["id"] == instance.id and vm["zone"] == zone and vm["tags"][TAG_LABEL] == NAME
    raw = vm["raw"]
    assert raw["MetadataOptions"]["HttpTokens"] == "required"
    # the secret is in a SecureString parameter, never in user-data
    assert SECRET not in vm["startup_script"] and "echo bootstrap" in vm["startup_script"]
    assert aws_cloud.secrets() == {f"/cml-action/{NAME}/registration": SECRET}
    assert f"/cml-action/{NAME}/registration" in provider.secret_snippet(spec())
    ec2 = aws_cloud.client("ec2", direct=True)
    assert ec2.describe_instance_attribute(InstanceId=instance.id, Attribute="instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    groups = ec2.describe_security_groups(GroupIds=[g["GroupId"] for g in raw["SecurityGroups"]])["SecurityGroups"]
    assert all(g["IpPermissions"] == [] for g in groups)  # no inbound rule at all
    assert [i.id for i in provider.find({TAG_LABEL: NAME})] == [instance.id]
    assert provider.state(instance).state in ("pending", "running")
    provider.delete(instance)
    provider.delete(instance)  # idempotent
    assert aws_cloud.leftovers() == []


def test_capacity_in_one_zone_is_a_zone_error_and_quota_a_region_error(aws_cloud, provider):
    zones = provider.zones("us-west-2")
    aws_cloud.fail_capacity(zones[0])
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement(zones[0], "g4dn.xlarge", spot=True))
    assert err.value.scope == "zone" and err.value.transient and "InsufficientInstanceCapacity" in str(err.value)
    assert aws_cloud.leftovers() == []  # the parameter and role of the failed attempt are gone
    aws_cloud.fail_quota()
    with pytest.raises(CapacityError) as err:
        provider.create(spec(), Placement(zones[1], "g4dn.xlarge", spot=False))
    assert err.value.scope == "region"
    assert aws_cloud.leftovers() == []


def test_throttling_is_retried(aws_cloud, provider):
    aws_cloud.fail_throttle(times=2)
    assert len(provider.zones("us-west-2")) >= 2


def test_preemption_is_reported(aws_cloud, provider):
    instance = provider.create(spec(), Placement(provider.zones("us-west-2")[0], "g4dn.xlarge", spot=True))
    aws_cloud.set_state(instance.id, "terminated", preempted=True)
    state = provider.state(instance)
    assert state.state == "terminated" and state.preempted
    provider.delete(instance)
    assert aws_cloud.leftovers() == []


def test_a_parameter_left_by_an_interrupted_launch_is_found_and_deleted(aws_cloud, provider):
    aws_cloud.client("ssm", direct=True).put_parameter(
        Name=f"/cml-action/{NAME}/registration", Value=SECRET, Type="SecureString",
        Tags=[{"Key": TAG_LABEL, "Value": NAME}, {"Key": TAG_RUNNER, "Value": NAME}])
    (left,) = provider.find({TAG_LABEL: NAME})
    assert left.state == "missing"
    provider.delete(left)
    assert aws_cloud.leftovers() == []


class _Imds(BaseHTTPRequestHandler):
    """Instance metadata (IMDSv2) for the snippet test: a token, then the role's credentials."""

    def log_message(self, *args):
        pass

    def do_PUT(self):
        self._send(b"imds-token")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
            self.send_response(401)
            self.end_headers()
            return
        if self.path.endswith("/security-credentials/"):
            self._send(b"cml-role")
        else:
            self._send(json.dumps({"AccessKeyId": "AKIAVMROLE", "SecretAccessKey": "vm-secret",
                                   "Token": "vm-session-token"}).encode())

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_vm_snippet_reads_the_registration_and_deletes_it(aws_cloud, provider, tmp_path: Path):
    provider.create(spec(image=aws_cloud.image_id), Placement(provider.zones("us-west-2")[0], "g4dn.xlarge", False))
    imds = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    threading.Thread(target=imds.serve_forever, daemon=True).start()
    script = tmp_path / "secret.sh"
    script.write_text("#!/bin/bash\nset -euo pipefail\n" + provider.secret_snippet(spec()) + "\n")
    shellcheck = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert shellcheck.returncode == 0, shellcheck.stdout
    env = {"PATH": "/usr/bin:/bin", "CML_IMDS": f"http://127.0.0.1:{imds.server_address[1]}",
           "CML_SSM_ENDPOINT": aws_cloud.proxy.url}
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    imds.shutdown()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == SECRET
    assert aws_cloud.secrets() == {}  # destroyed at the source
