"""The provisioning interface every cloud implements, in the spirit of one module per cloud.

The orchestrator (runners.launch) owns the fallback order over zones, types and spot/on-demand; a
provider only tries one placement and, when it fails, says how far the failure reaches (`scope`)
and whether trying again later could help (`transient`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from cml_action.errors import CloudError

Scope = Literal["zone", "region", "type", "cloud"]

TAG_RUNNER = "cml-action-runner"  # runner name; every resource the tool creates carries it
TAG_EXPIRES = "cml-action-expires"  # ISO-8601 UTC instant after which runner-sweep deletes the VM
TAG_REPO = "cml-action-repo"
TAG_LABEL = "cml-action-label"


class CapacityError(CloudError):
    """A placement failed: no capacity, quota, unsupported type here. The orchestrator moves on."""

    def __init__(self, message: str, scope: Scope, transient: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.scope = scope
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class Placement:
    zone: str
    machine_type: str  # native type
    spot: bool


@dataclass(frozen=True)
class MachineSpec:
    """Everything about the VM except where it lands. Holds no secret: `secret` goes through the provider's
    secret hand-over (SSM SecureString, GCE guest attribute via metadata... see each provider), never user-data."""

    name: str
    region: str
    gpu: str  # generic (t4, a100...) or native accelerator, "none" for CPU
    gpu_count: int
    image: str  # "" = provider default for the GPU/CPU case
    disk_gb: int
    subnet: str
    permission_set: str
    tags: dict[str, str]
    startup_script: str
    secret: str = field(repr=False, default="")
    max_lifetime_s: int = 12 * 3600
    # what the runner itself needs (the VM script has it rendered in; a pod gets it as environment)
    forge: str = "github"
    forge_url: str = ""
    idle_timeout_s: int = 300


@dataclass(frozen=True)
class Instance:
    id: str
    name: str
    zone: str
    state: str  # provider-neutral: pending | running | stopping | stopped | terminated | missing
    tags: dict[str, str]
    created_at: datetime | None = None
    preempted: bool = False


class Provider(Protocol):
    """Each cloud module exposes `from_env(env: Mapping[str, str], region: str) -> Provider`; endpoints are
    overridable for tests and sovereign clouds: AWS_ENDPOINT_URL, CML_GCP_ENDPOINT, CML_AZURE_ENDPOINT."""

    cloud: str

    def zones(self, region: str) -> list[str]: ...

    def native_type(self, generic: str, gpu: str, gpu_count: int) -> str:
        """Map `s|m|l|xl` (+ gpu) to a native type; a native type passes through unchanged."""

    def secret_snippet(self, spec: MachineSpec) -> str:
        """Shell lines, run as root on the VM by the startup script, that print the hand-over secret (the
        JIT config / runner token) to stdout and then destroy it at the source (delete the SSM parameter,
        the Secret Manager secret...). The secret itself never appears in user-data or metadata."""

    def poweroff_snippet(self, spec: MachineSpec) -> str:
        """Shell lines, run as root on the VM, that make the machine go away for good, billing included.
        AWS: `shutdown -h now` (the instance is created with shutdown behaviour `terminate`). GCP and Azure: a guest
        shutdown only stops the VM (disks still billed), so the VM deletes itself (its instance / its resource group)
        through the cloud API with its own narrowly scoped identity, then shuts down as a last resort."""

    def create(self, spec: MachineSpec, placement: Placement) -> Instance:
        """Create one VM (and its secret hand-over). Raises CapacityError for placement failures;
        anything it created before failing it deletes itself."""

    def find(self, tags: dict[str, str]) -> list[Instance]:
        """Every VM of this tool whose tags include all of `tags`, in any state but deleted. Leftovers of a launch
        that failed half-way (an Azure resource group or an SSM parameter without a VM) come back as instances in
        state `missing`, so teardown and sweep delete them too."""

    def state(self, instance: Instance) -> Instance: ...

    def delete(self, instance: Instance) -> None:
        """Delete the VM and everything created with it (disks, NICs, IPs, secrets, groups). Idempotent."""
