"""AWS EC2 through boto3.

Guarantee: instances are created with InstanceInitiatedShutdownBehavior=terminate, so the VM's own
`shutdown -h now` (after its job, when idle, at max lifetime) terminates it: EBS volumes go with it
(DeleteOnTermination). Spot instances use the `terminate` interruption behaviour. `runner-sweep` enforces
the `cml-action-expires` tag from outside.

Secret hand-over: the one-job runner registration is stored as an SSM SecureString parameter named after
the runner; the VM reads it with its instance role (IMDSv2 credentials, SigV4 signed by python3's standard
library, since stock Ubuntu has no AWS CLI) and deletes it. User-data holds no secret. When no instance
profile is given, a per-runner role is created that may read and delete only that parameter.
"""

from __future__ import annotations

import json
import shlex
from datetime import timezone
from typing import Any, Callable, Mapping, TypeVar

from cml_action.clouds.base import TAG_RUNNER, CapacityError, Instance, MachineSpec, Placement
from cml_action.errors import CloudError, UserError
from cml_action.retry import pause
from cml_action.failures import PartialListing, one_line

T = TypeVar("T")

CPU_IMAGE_PARAMETER = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
GPU_IMAGE_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
PARAMETER_PREFIX = "/cml-action"
IAM_PATH = "/cml-action/"
SECURITY_GROUP = "cml-action-runners"  # no inbound rules at all; shared by the runners of a VPC, never billed

SIZES = {"s": "m7i.large", "m": "m7i.2xlarge", "l": "m7i.4xlarge", "xl": "m7i.8xlarge"}
GPUS = {"t4": "g4dn.xlarge", "l4": "g6.xlarge", "a10g": "g5.xlarge", "v100": "p3.2xlarge", "a100": "p4d.24xlarge",
        "h100": "p5.48xlarge"}
# GPU types by generic size, where a size changes the machine (more CPU/RAM, more GPUs)
GPU_SIZES = {
    "t4": {"s": "g4dn.xlarge", "m": "g4dn.2xlarge", "l": "g4dn.4xlarge", "xl": "g4dn.12xlarge"},
    "l4": {"s": "g6.xlarge", "m": "g6.2xlarge", "l": "g6.4xlarge", "xl": "g6.12xlarge"},
    "a10g": {"s": "g5.xlarge", "m": "g5.2xlarge", "l": "g5.4xlarge", "xl": "g5.12xlarge"},
}
MULTI_GPU = {"t4": {4: "g4dn.12xlarge", 8: "g4dn.metal"}, "l4": {4: "g6.12xlarge", 8: "g6.48xlarge"},
             "a10g": {4: "g5.12xlarge", 8: "g5.48xlarge"}, "v100": {4: "p3.8xlarge", 8: "p3.16xlarge"}}

CAPACITY = {"InsufficientInstanceCapacity": "zone", "InsufficientCapacityOnHost": "zone",
            "SpotMaxPriceTooLow": "zone", "InsufficientFreeAddressesInSubnet": "zone", "Unsupported": "zone",
            "VcpuLimitExceeded": "region", "MaxSpotInstanceCountExceeded": "region", "InstanceLimitExceeded": "region",
            "InvalidInstanceType": "type"}
TRANSIENT = {"InsufficientInstanceCapacity", "InsufficientCapacityOnHost"}
THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}

PERMISSIONS = """\
**Launcher** (the credentials of the launch/teardown/sweep jobs), as an IAM policy:
`ec2:RunInstances`, `ec2:CreateTags`, `ec2:DescribeInstances`, `ec2:DescribeInstanceAttribute`,
`ec2:TerminateInstances`, `ec2:DescribeAvailabilityZones`, `ec2:DescribeImages`, `ec2:DescribeVpcs`,
`ec2:DescribeSubnets`, `ec2:DescribeSecurityGroups`, `ec2:CreateSecurityGroup`;
`ssm:PutParameter`, `ssm:AddTagsToResource`, `ssm:DeleteParameter`, `ssm:GetParameter` (public image parameters),
`ssm:DescribeParameters`, `ssm:ListTagsForResource` on `arn:aws:ssm:*:*:parameter/cml-action/*`;
and, unless you pass `cloud-permission-set`: `iam:CreateRole`, `iam:PutRolePolicy`, `iam:DeleteRolePolicy`,
`iam:DeleteRole`, `iam:CreateInstanceProfile`, `iam:AddRoleToInstanceProfile`, `iam:RemoveRoleFromInstanceProfile`,
`iam:DeleteInstanceProfile`, `iam:TagRole`, `iam:ListRoles`, `iam:ListInstanceProfiles` and `iam:PassRole` on
`arn:aws:iam::*:role/cml-action/*`.
**VM** (its instance profile): `ssm:GetParameter` and `ssm:DeleteParameter` on its own parameter
`arn:aws:ssm:REGION:ACCOUNT:parameter/cml-action/RUNNER/*` — nothing else."""

GUARANTEE = ("The VM is created with shutdown behaviour *terminate*: when it powers itself off (after its job, "
             "idle, or at max lifetime) AWS deletes it and its encrypted volume. Spot interruptions also terminate. "
             "`runner-sweep` deletes anything past its `cml-action-expires` tag.")




def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


class AwsProvider:
    cloud = "aws"

    def __init__(self, env: Mapping[str, str], region: str) -> None:
        self.region = region
        self._env = env
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            kwargs: dict[str, Any] = {"region_name": self.region,
                                      "config": Config(retries={"total_max_attempts": 1, "mode": "standard"})}
            for key, name in (("endpoint_url", "AWS_ENDPOINT_URL"), ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                              ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                              ("aws_session_token", "AWS_SESSION_TOKEN")):
                if self._env.get(name):
                    kwargs[key] = self._env[name]
            self._clients[service] = boto3.client(service, **kwargs)
        return self._clients[service]

    def _call(self, what: str, fn: Callable[[], T], retry_codes: frozenset[str] = frozenset()) -> T:
        """Throttling (and `retry_codes`) are retried with backoff; other errors surface to the caller."""
        from botocore.exceptions import ClientError, NoCredentialsError

        for attempt in range(6):
            try:
                return fn()
            except NoCredentialsError:
                raise UserError("no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use OIDC "
                                "(aws-actions/configure-aws-credentials)") from None
            except ClientError as exc:
                code = _code(exc)
                if (code in THROTTLED or code in retry_codes) and attempt < 5:
                    pause(attempt)
                    continue
                raise
        raise CloudError(f"AWS kept throttling {what}")  # pragma: no cover

    # --- catalogue --------------------------------------------------------------------------------
    def zones(self, region: str) -> list[str]:
        data = self._call("list zones", lambda: self._client("ec2").describe_availability_zones(
            Filters=[{"Name": "state", "Values": ["available"]}, {"Name": "zone-type", "Values": ["availability-zone"]}]))
        return sorted(z["ZoneName"] for z in data["AvailabilityZones"])

    def native_type(self, generic: str, gpu: str, gpu_count: int) -> str:
        generic = generic.lower()
        if gpu in ("", "none"):
            return SIZES.get(generic, generic)
        if gpu not in GPUS:
            if "." in gpu:  # a native GPU type given as the gpu
                return gpu
            raise UserError(f"--cloud-gpu {gpu!r} is not offered on AWS here; choose one of {', '.join(GPUS)}")
        if gpu_count > 1:
            if gpu_count in MULTI_GPU.get(gpu, {}):
                return MULTI_GPU[gpu][gpu_count]
            if gpu in ("a100", "h100") and gpu_count == 8:
                return GPUS[gpu]
            raise UserError(f"--cloud-gpu-count {gpu_count} with {gpu}: AWS offers "
                            f"{sorted(MULTI_GPU.get(gpu, {8: ''}))} (or pass a native type in cloud-type)")
        if generic in GPU_SIZES.get(gpu, {}):
            return GPU_SIZES[gpu][generic]
        return generic if "." in generic else GPUS[gpu]

    def _image(self, spec: MachineSpec) -> str:
        if spec.image:
            return spec.image
        name = CPU_IMAGE_PARAMETER if spec.gpu in ("", "none") else GPU_IMAGE_PARAMETER
        data = self._call("look up the image", lambda: self._client("ssm").get_parameter(Name=name))
        return data["Parameter"]["Value"]  # AWS-owned public parameter: the owner is verified by construction

    # --- secret hand-over -------------------------------------------------------------------------
    def _parameter(self, spec_or_name: MachineSpec | str) -> str:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        return f"{PARAMETER_PREFIX}/{name}/registration"

    def secret_snippet(self, spec: MachineSpec) -> str:
        return _VM_SECRET.replace("@PARAMETER@", shlex.quote(self._parameter(spec))).replace(
            "@REGION@", shlex.quote(self.region))

    def poweroff_snippet(self, spec: MachineSpec) -> str:
        return "shutdown -h now"

    def _tags(self, spec: MachineSpec) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())]

    def _store_secret(self, spec: MachineSpec) -> None:
        from botocore.exceptions import ClientError

        ssm = self._client("ssm")
        try:
            self._call("store the registration", lambda: ssm.put_parameter(
                Name=self._parameter(spec), Value=spec.secret, Type="SecureString", Tags=self._tags(spec),
                Description="cml-action one-job runner registration; the VM deletes it at boot"))
        except ClientError as exc:
            if _code(exc) != "ParameterAlreadyExists":
                raise
            # left by the previous placement of this launch when its cleanup failed: same runner, same secret
            self._call("store the registration", lambda: ssm.put_parameter(
                Name=self._parameter(spec), Value=spec.secret, Type="SecureString", Overwrite=True))

    def _role(self, spec: MachineSpec) -> str:
        """A per-runner instance profile allowed to read and delete only its own parameter."""
        iam = self._client("iam")
        name = f"cml-action-{spec.name}"[:64]
        account = self._call("read the account", lambda: self._client("sts").get_caller_identity())["Account"]
        resource = f"arn:aws:ssm:{self.region}:{account}:parameter{self._parameter(spec)}"
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:DeleteParameter"], "Resource": resource}]}
        # "already exists": left by the previous placement of this launch when its cleanup failed; the names are
        # this launch's own, so the fallback carries on with them
        self._idempotent("create the VM role", lambda: iam.create_role(
            RoleName=name, Path=IAM_PATH, AssumeRolePolicyDocument=json.dumps(trust), Tags=self._tags(spec),
            Description="cml-action runner: read and delete its own registration"), "EntityAlreadyExists")
        self._call("grant the VM role", lambda: iam.put_role_policy(RoleName=name, PolicyName="registration",
                                                                     PolicyDocument=json.dumps(policy)))
        self._idempotent("create the instance profile", lambda: iam.create_instance_profile(
            InstanceProfileName=name, Path=IAM_PATH), "EntityAlreadyExists")
        self._idempotent("attach the role", lambda: iam.add_role_to_instance_profile(
            InstanceProfileName=name, RoleName=name), "LimitExceeded")
        return name

    def _idempotent(self, what: str, fn: Callable[[], Any], already: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(what, fn)
        except ClientError as exc:
            if _code(exc) != already:
                raise

    def _security_group(self, subnet: str) -> str:
        """The VPC's `cml-action-runners` group: no inbound rule, all outbound (HTTPS to GitHub)."""
        ec2 = self._client("ec2")
        if subnet:
            vpc = self._call("read the subnet", lambda: ec2.describe_subnets(SubnetIds=[subnet]))["Subnets"][0]["VpcId"]
        else:
            vpcs = self._call("find the default VPC", lambda: ec2.describe_vpcs(
                Filters=[{"Name": "is-default", "Values": ["true"]}]))["Vpcs"]
            if not vpcs:
                raise UserError("this region has no default VPC: pass --cloud-subnet")
            vpc = vpcs[0]["VpcId"]
        found = self._call("find the security group", lambda: ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [SECURITY_GROUP]}]))["SecurityGroups"]
        if found:
            return found[0]["GroupId"]
        return self._call("create the security group", lambda: ec2.create_security_group(
            GroupName=SECURITY_GROUP, VpcId=vpc, Description="cml-action runners: no inbound access",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "cml-action", "Value": "runners"}]}]
        ))["GroupId"]

    # --- lifecycle ----------------------------------------------------------------------------------
    def create(self, spec: MachineSpec, placement: Placement) -> Instance:
        from botocore.exceptions import ClientError

        created_role = ""
        stored = False
        try:
            image = self._image(spec)
            group = self._security_group(spec.subnet)
            profile = spec.permission_set
            if not profile:
                profile = created_role = self._role(spec)
            self._store_secret(spec)
            stored = True
            tags = self._tags(spec)
            kinds = ["instance", "volume", "network-interface"] + (["spot-instances-request"] if placement.spot else [])
            request: dict[str, Any] = {
                "ImageId": image, "InstanceType": placement.machine_type, "MinCount": 1, "MaxCount": 1,
                "UserData": spec.startup_script, "InstanceInitiatedShutdownBehavior": "terminate",
                "IamInstanceProfile": {"Name": profile},
                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
                "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {
                    "VolumeSize": spec.disk_gb, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}],
                "TagSpecifications": [{"ResourceType": kind, "Tags": tags} for kind in kinds],
                "SecurityGroupIds": [group],
            }
            if spec.subnet:
                request["SubnetId"] = spec.subnet
            else:
                request["Placement"] = {"AvailabilityZone": placement.zone}
            if placement.spot:
                request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                    "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
            ec2 = self._client("ec2")
            try:
                # a role created a moment ago is not yet usable by EC2 (IAM is eventually consistent)
                reply = self._call("create the VM", lambda: ec2.run_instances(**request),
                                   retry_codes=frozenset({"InvalidParameterValue"}) if created_role else frozenset())
            except ClientError as exc:
                code = _code(exc)
                message = exc.response.get("Error", {}).get("Message", str(exc))
                if code in CAPACITY:
                    raise CapacityError(f"{code}: {message}", CAPACITY[code], code in TRANSIENT, code) from None
                if code == "InvalidParameterValue" and "instance type" in message.lower():
                    raise CapacityError(f"{code}: {message}", "type", False, code) from None
                raise CloudError(f"AWS refused to create the VM: {code}: {message}") from None
            inst = reply["Instances"][0]
            return Instance(inst["InstanceId"], spec.name, inst["Placement"]["AvailabilityZone"], "pending",
                            dict(spec.tags), inst.get("LaunchTime"))
        except BaseException as exc:
            # nothing half-made stays behind: the parameter and the role go, the caller moves on; a cleanup that
            # fails is noted on the original error (the launcher's cleanup by label retries it), never raised over it
            for line in self._delete_support(spec.name, stored, created_role):
                exc.add_note(f"cleanup: {line}")
            raise

    def _delete_support(self, name: str, parameter: bool = True, role: str | None = None) -> list[str]:
        """Remove the registration parameter and the per-runner role; every step is tried, what failed is returned
        (one line each) so that a refusal never hides the error that made us clean up."""
        from botocore.exceptions import ClientError

        steps: list[tuple[str, Callable[[], Any], str]] = []
        if parameter:
            ssm = self._client("ssm")
            steps.append(("delete the registration parameter",
                          lambda: ssm.delete_parameter(Name=self._parameter(name)), "ParameterNotFound"))
        role_name = f"cml-action-{name}"[:64] if role is None else role
        if role_name:
            iam = self._client("iam")
            steps += [
                ("detach the VM role", lambda: iam.remove_role_from_instance_profile(
                    InstanceProfileName=role_name, RoleName=role_name), "NoSuchEntity"),
                ("delete the instance profile", lambda: iam.delete_instance_profile(InstanceProfileName=role_name),
                 "NoSuchEntity"),
                ("delete the VM role policy", lambda: iam.delete_role_policy(RoleName=role_name, PolicyName="registration"),
                 "NoSuchEntity"),
                ("delete the VM role", lambda: iam.delete_role(RoleName=role_name), "NoSuchEntity"),
            ]
        failures: list[str] = []
        for what, step, gone in steps:
            try:
                self._call(what, step)
            except ClientError as exc:
                if _code(exc) != gone:
                    failures.append(f"{what} of {name}: {one_line(exc)}")
            except Exception as exc:  # noqa: BLE001 - connection errors and the like: report, keep going
                failures.append(f"{what} of {name}: {one_line(exc)}")
        return failures

    def _instance(self, raw: dict) -> Instance:
        state = {"pending": "pending", "running": "running", "shutting-down": "stopping", "stopping": "stopping",
                 "stopped": "stopped", "terminated": "terminated"}.get(raw["State"]["Name"], "pending")
        reason = (raw.get("StateReason") or {}).get("Code", "")
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        created = raw.get("LaunchTime")
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return Instance(raw["InstanceId"], tags.get(TAG_RUNNER, ""), raw["Placement"]["AvailabilityZone"], state, tags,
                        created, preempted=reason == "Server.SpotInstanceTermination")

    def find(self, tags: dict[str, str]) -> list[Instance]:
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        ec2 = self._client("ec2")
        found: list[Instance] = []
        for page in self._call("list VMs", lambda: list(ec2.get_paginator("describe_instances").paginate(Filters=filters))):
            for reservation in page["Reservations"]:
                found.extend(self._instance(raw) for raw in reservation["Instances"])
        try:
            return found + self._leftovers(tags, {i.name for i in found if i.state != "terminated"})
        except Exception as exc:  # noqa: BLE001 - the VMs found must still be deleted
            raise PartialListing(f"listing leftover registrations: {one_line(exc)}", found) from None

    def _leftovers(self, tags: dict[str, str], live: set[str]) -> list[Instance]:
        """A registration parameter without a VM: a launch interrupted between storing it and creating the VM."""
        found: list[Instance] = []
        ssm = self._client("ssm")
        params = self._call("list registrations", lambda: [p for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [PARAMETER_PREFIX]}])
            for p in page["Parameters"]])
        for param in params:
            name = param["Name"].split("/")[2] if param["Name"].count("/") >= 3 else ""
            if not name or name in live:
                continue
            ptags = {t["Key"]: t["Value"] for t in self._call("read tags", lambda: ssm.list_tags_for_resource(
                ResourceType="Parameter", ResourceId=param["Name"]))["TagList"]}
            if all(ptags.get(k) == v for k, v in tags.items()):
                found.append(Instance(f"parameter:{name}", name, "", "missing", ptags, param.get("LastModifiedDate")))
        return found

    def state(self, instance: Instance) -> Instance:
        from botocore.exceptions import ClientError

        if not instance.id.startswith("i-"):
            return instance
        try:
            data = self._call("read the VM", lambda: self._client("ec2").describe_instances(InstanceIds=[instance.id]))
        except ClientError as exc:
            if _code(exc) == "InvalidInstanceID.NotFound":
                return Instance(instance.id, instance.name, instance.zone, "missing", instance.tags)
            raise CloudError(f"AWS failed to read {instance.id}: {one_line(exc)}") from None
        reservations = data["Reservations"]
        if not reservations:
            return Instance(instance.id, instance.name, instance.zone, "missing", instance.tags)
        return self._instance(reservations[0]["Instances"][0])

    def delete(self, instance: Instance) -> None:
        from botocore.exceptions import ClientError

        failures: list[str] = []
        if instance.id.startswith("i-"):
            try:
                self._call("delete the VM", lambda: self._client("ec2").terminate_instances(InstanceIds=[instance.id]))
            except ClientError as exc:
                if _code(exc) != "InvalidInstanceID.NotFound":
                    failures.append(f"terminate {instance.id}: {one_line(exc)}")
            except Exception as exc:  # noqa: BLE001 - still remove the parameter and the role below
                failures.append(f"terminate {instance.id}: {one_line(exc)}")
        # the role may still be attached to the terminating instance: IAM allows removing it regardless
        failures += self._delete_support(instance.name)
        if failures:
            raise CloudError("AWS refused to " + "; ".join(failures))


def from_env(env: Mapping[str, str], region: str) -> AwsProvider:
    return AwsProvider(env, region)


# Runs on the VM (bash, as root). Prints the registration and deletes it at the source. Endpoints are
# overridable (CML_IMDS, CML_SSM_ENDPOINT) only so the tests can run it against local stand-ins.
_VM_SECRET = r'''CML_PARAMETER=@PARAMETER@ CML_REGION=@REGION@ python3 - <<'PYEOF'
import datetime, hashlib, hmac, json, os, urllib.request
imds = os.environ.get("CML_IMDS", "http://169.254.169.254")
def meta(path, token):
    req = urllib.request.Request(imds + path, headers={"X-aws-ec2-metadata-token": token})
    return urllib.request.urlopen(req, timeout=5).read().decode()
token = urllib.request.urlopen(urllib.request.Request(imds + "/latest/api/token", method="PUT",
    headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}), timeout=5).read().decode()
role = meta("/latest/meta-data/iam/security-credentials/", token).split()[0]
creds = json.loads(meta("/latest/meta-data/iam/security-credentials/" + role, token))
region = os.environ["CML_REGION"]
endpoint = os.environ.get("CML_SSM_ENDPOINT", "https://ssm.%s.amazonaws.com" % region)
host = endpoint.split("://", 1)[1].split("/", 1)[0]
def call(target, body):
    payload = json.dumps(body).encode()
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"content-type": "application/x-amz-json-1.1", "host": host, "x-amz-date": stamp,
               "x-amz-security-token": creds["Token"], "x-amz-target": "AmazonSSM." + target}
    names = ";".join(sorted(headers))
    canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)), names,
                           hashlib.sha256(payload).hexdigest()])
    scope = "%s/%s/ssm/aws4_request" % (day, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds["SecretAccessKey"]).encode()
    for part in (day, region, "ssm", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        creds["AccessKeyId"], scope, names, signature)
    return json.loads(urllib.request.urlopen(urllib.request.Request(endpoint + "/", data=payload, headers=headers),
                                             timeout=10).read() or b"{}")
name = os.environ["CML_PARAMETER"]
value = call("GetParameter", {"Name": name, "WithDecryption": True})["Parameter"]["Value"]
call("DeleteParameter", {"Name": name})
print(value)
PYEOF'''
