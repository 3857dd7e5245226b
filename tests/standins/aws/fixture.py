"""The `aws_cloud` fixture: moto's server on loopback behind the fault proxy, reached via AWS_ENDPOINT_URL."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

from standins.aws.proxy import AwsProxy

REGION = "us-west-2"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIATESTINGCMLACTION", "AWS_SECRET_ACCESS_KEY": "testing-secret",
               "AWS_DEFAULT_REGION": REGION}
CAPACITY = "We currently do not have sufficient {type} capacity in the Availability Zone you requested ({zone})."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AwsCloud:
    cloud = "aws"
    region = REGION

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        self._moto.start()
        host, port = self._moto._server.server_address[:2]  # noqa: SLF001 - moto exposes no public accessor
        self.moto_url = f"http://{host}:{port}"
        self.reset()
        ec2 = self.client("ec2", direct=True)
        images = ec2.describe_images(Owners=["099720109477"])["Images"]  # moto's Canonical images
        self.image_id = images[0]["ImageId"]
        from cml_action.clouds import aws

        self.proxy = AwsProxy(self.moto_url, {aws.CPU_IMAGE_PARAMETER: self.image_id,
                                              aws.GPU_IMAGE_PARAMETER: self.image_id}).start()
        self.env = {"AWS_ENDPOINT_URL": self.proxy.url, **CREDENTIALS}

    def reset(self) -> None:
        """moto keeps its state per process: start every test from an empty account."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST"), timeout=30)

    def client(self, service: str, direct: bool = False):
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.moto_url if direct else self.proxy.url,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    # --- the uniform cloud-fixture interface ---------------------------------------------------------
    def fail_capacity(self, zone: str, times: int = 1) -> None:
        self.proxy.fail("RunInstances", "InsufficientInstanceCapacity", CAPACITY.format(type="requested", zone=zone),
                        zone=zone, times=times, status=500)

    def fail_quota(self, times: int = 1) -> None:
        self.proxy.fail("RunInstances", "VcpuLimitExceeded",
                        "You have requested more vCPU capacity than your current vCPU limit allows.", times=times)

    def fail_throttle(self, times: int = 1) -> None:
        self.proxy.fail("*", "RequestLimitExceeded", "Request limit exceeded.", times=times, status=503)

    def instances(self) -> list[dict]:
        ec2 = self.client("ec2", direct=True)
        found = []
        for reservation in ec2.describe_instances()["Reservations"]:
            for inst in reservation["Instances"]:
                if inst["State"]["Name"] == "terminated":
                    continue
                attr = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
                import base64

                data = attr.get("UserData", {}).get("Value", "")
                found.append({"id": inst["InstanceId"], "name": _tag(inst, "cml-action-runner"),
                              "zone": inst["Placement"]["AvailabilityZone"], "state": inst["State"]["Name"],
                              "tags": {t["Key"]: t["Value"] for t in inst.get("Tags", [])},
                              "startup_script": base64.b64decode(data).decode() if data else "", "raw": inst})
        return found

    def set_state(self, instance_id: str, state: str, preempted: bool = False) -> None:
        ec2 = self.client("ec2", direct=True)
        if state == "stopped":
            ec2.stop_instances(InstanceIds=[instance_id])
        elif state == "terminated":
            ec2.terminate_instances(InstanceIds=[instance_id])
        if preempted:
            # moto's server runs in this process: record the spot interruption the way EC2 reports it
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.ec2.models import ec2_backends
            from moto.ec2.models.instances import StateReason

            instance = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(instance_id)
            instance.state_reason = StateReason("Server.SpotInstanceTermination: Spot instance termination",
                                                "Server.SpotInstanceTermination")

    def secrets(self) -> dict[str, str]:
        ssm = self.client("ssm", direct=True)
        out = {}
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/cml-action", Recursive=True,
                                                                          WithDecryption=True):
            out.update({p["Name"]: p["Value"] for p in page["Parameters"]})
        return out

    def leftovers(self) -> list[str]:
        ec2 = self.client("ec2", direct=True)
        left = [f"instance {i['id']} ({i['state']})" for i in self.instances()]
        for volume in ec2.describe_volumes()["Volumes"]:
            if any(t["Key"].startswith("cml-action") for t in volume.get("Tags", [])):
                left.append(f"volume {volume['VolumeId']}")
        for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]:
            if any(t["Key"].startswith("cml-action") for t in eni.get("TagSet", [])):
                left.append(f"network interface {eni['NetworkInterfaceId']}")
        left += [f"elastic IP {a['PublicIp']}" for a in ec2.describe_addresses()["Addresses"]]
        left += [f"SSM parameter {name}" for name in self.secrets()]
        iam = self.client("iam", direct=True)
        left += [f"IAM role {r['RoleName']}" for r in iam.list_roles(PathPrefix="/cml-action/")["Roles"]]
        left += [f"instance profile {p['InstanceProfileName']}"
                 for p in iam.list_instance_profiles(PathPrefix="/cml-action/")["InstanceProfiles"]]
        return left

    def assert_clean(self) -> None:
        self.proxy.assert_clean()

    def stop(self) -> None:
        self.reset()
        self.proxy.stop()
        self._moto.stop()


def _tag(inst: dict, key: str) -> str:
    return next((t["Value"] for t in inst.get("Tags", []) if t["Key"] == key), "")


@pytest.fixture()
def aws_cloud() -> Iterator[AwsCloud]:
    cloud = AwsCloud()
    try:
        yield cloud
        cloud.assert_clean()
    finally:
        cloud.stop()
