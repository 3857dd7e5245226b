"""A proxy in front of moto's server: forwards every AWS call, and plays the parts moto cannot.

- Faults: the EC2 errors AWS returns under stress (InsufficientInstanceCapacity for one zone, quota,
  RequestLimitExceeded throttling), matched on the query-API action and its parameters.
- AWS's public parameters (/aws/service/...): moto refuses that reserved path, so the proxy answers
  GetParameter for them with an image moto knows, as AWS answers with the current AMI id.
- Shape checks: every EC2 query-API call is checked against botocore's service model (the published API
  description AWS ships in its SDK), and RunInstances must carry the safety settings cml-action promises.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from standins.server import Request, Response, SpecViolation, StandIn


@dataclass
class Ec2Fault:
    action: str
    code: str
    message: str
    zone: str | None
    times: int
    status: int = 400
    params: dict[str, str] | None = None  # only calls carrying these parameters (flattened query / JSON names)


def _ec2_error(code: str, message: str, status: int = 400) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>cml-standin</RequestID></Response>")
    return Response(status, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})


def _service_error(request: Request, fault: Ec2Fault) -> Response:
    """The error shape of the other services: JSON (X-Amz-Target: SSM) or the query protocol's XML (IAM, STS)."""
    if request.headers.get("x-amz-target"):
        return Response(fault.status, {"__type": fault.code, "message": fault.message},
                        {"Content-Type": "application/x-amz-json-1.1"})
    body = (f'<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code><Message>{fault.message}</Message>'
            "</Error><RequestId>cml-standin</RequestId></ErrorResponse>")
    return Response(fault.status, body.encode(), {"Content-Type": "text/xml"})


class AwsProxy(StandIn):
    def __init__(self, moto_url: str, public_parameters: dict[str, str]) -> None:
        super().__init__()
        self.moto_url = moto_url
        self.public_parameters = public_parameters
        self.ec2_faults: list[Ec2Fault] = []
        self.calls: list[tuple[str, dict[str, str]]] = []  # (service action, flattened params)
        self._ec2_model = None
        for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
            self.route(method, r"/.*", self._forward)

    def fail(self, action: str, code: str, message: str, zone: str | None = None, times: int = 1,
             status: int = 400, params: dict[str, str] | None = None) -> None:
        """Answer the next `times` calls of `action` (any service: EC2, SSM, IAM...) with an AWS error."""
        with self.lock:
            self.ec2_faults.append(Ec2Fault(action, code, message, zone, times, status, params))

    def clear_faults(self) -> None:
        with self.lock:
            self.ec2_faults.clear()
        super().clear_faults()

    def _operation(self, request: Request) -> tuple[str, dict[str, str]]:
        """(Action or X-Amz-Target operation, flattened parameters) of a query or JSON protocol call."""
        target = request.headers.get("x-amz-target", "")
        if target:
            data = json.loads(request.body or b"{}")
            return target.split(".")[-1], {k: json.dumps(v) if not isinstance(v, str) else v for k, v in data.items()}
        form = {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        form.update({k: v[0] for k, v in request.query.items()})
        return form.get("Action", ""), form

    def _check_ec2(self, action: str, params: dict[str, str]) -> None:
        import botocore.session

        if self._ec2_model is None:
            self._ec2_model = botocore.session.get_session().get_service_model("ec2")
        if action not in self._ec2_model.operation_names:
            raise SpecViolation(f"EC2 has no action {action!r}")
        shape = self._ec2_model.operation_model(action).input_shape
        known = {_query_name(name, m) for name, m in shape.members.items()} if shape else set()
        for key in params:
            if key in ("Action", "Version"):
                continue
            top = key.split(".")[0]
            if top not in known:
                raise SpecViolation(f"EC2 {action} has no parameter {top!r}")
        if action == "RunInstances":
            wanted = {"InstanceInitiatedShutdownBehavior": "terminate", "MetadataOptions.HttpTokens": "required"}
            for key, value in wanted.items():
                if params.get(key) != value:
                    raise SpecViolation(f"RunInstances without {key}={value}")
            encrypted = [k for k in params if re.fullmatch(r"BlockDeviceMapping\.\d+\.Ebs\.Encrypted", k)]
            if not encrypted or any(params[k] != "true" for k in encrypted):
                raise SpecViolation("RunInstances with an unencrypted volume")
            if any(k.startswith("NetworkInterface") and k.endswith("AssociatePublicIpAddress") and v == "true"
                   for k, v in params.items()):
                raise SpecViolation("RunInstances asked for a public IP")

    def _take_ec2_fault(self, action: str, params: dict[str, str], ec2: bool) -> Ec2Fault | None:
        with self.lock:
            for fault in self.ec2_faults:
                if fault.times <= 0 or fault.action not in (action, "*" if ec2 else action):
                    continue
                if fault.zone and params.get("Placement.AvailabilityZone") != fault.zone:
                    continue
                if fault.params and any(params.get(k) != v for k, v in fault.params.items()):
                    continue
                fault.times -= 1
                return fault
        return None

    def _forward(self, request: Request) -> Response:
        action, params = self._operation(request)
        self.calls.append((action, params))
        auth = request.headers.get("authorization", "")
        service = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
        if service and service.group(1) == "ec2" and action:
            try:
                self._check_ec2(action, params)
            except SpecViolation as exc:
                self.violations.append(f"EC2 {action}: {exc}")
                return _ec2_error("InvalidParameterValue", f"stand-in: {exc}")
        ec2 = bool(service and service.group(1) == "ec2")
        fault = self._take_ec2_fault(action, params, ec2) if action else None
        if fault is not None:
            if ec2:
                return _ec2_error(fault.code, fault.message, fault.status)
            return _service_error(request, fault)
        name = params.get("Name", "")
        if action == "GetParameter" and name in self.public_parameters:
            return Response(200, {"Parameter": {"Name": name, "Type": "String", "Value": self.public_parameters[name],
                                                "Version": 1, "DataType": "aws:ec2:image",
                                                "ARN": f"arn:aws:ssm:us-west-2::parameter{name}"}},
                            {"Content-Type": "application/x-amz-json-1.1"})
        return self._relay(request)

    def _relay(self, request: Request) -> Response:
        query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
        url = f"{self.moto_url}{request.path}" + (f"?{query}" if query else "")
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length", "connection")}
        outgoing = urllib.request.Request(url, data=request.body or None, headers=headers, method=request.method)
        try:
            with urllib.request.urlopen(outgoing, timeout=60) as resp:
                return Response(resp.status, resp.read(), _headers(resp.headers))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read(), _headers(exc.headers))


def _query_name(member: str, shape: Any) -> str:
    """How the EC2 query protocol names a parameter: queryName, else locationName / member name capitalised."""
    if shape.serialization.get("queryName"):
        return shape.serialization["queryName"]
    name = shape.serialization.get("name") or member
    return name[0].upper() + name[1:]


def _headers(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                                                  "server", "date")}
