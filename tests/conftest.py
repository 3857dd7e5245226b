"""Fixtures shared across test modules: the service stand-ins (each in tests/standins/<service>/fixture.py)."""

from standins.arm.fixture import azure_cloud  # noqa: F401
from standins.aws.fixture import aws_cloud  # noqa: F401
from standins.docker_engine.fixture import docker_engine  # noqa: F401
from standins.gce.fixture import gcp_cloud  # noqa: F401
from standins.github.fixture import github_standin  # noqa: F401
from standins.gitlab.fixture import gitlab_standin  # noqa: F401
from standins.kubernetes.fixture import kubernetes_cloud  # noqa: F401
