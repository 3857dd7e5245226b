# syntax=docker/dockerfile:1.7
# cml-action's prebuilt image. One Dockerfile, two targets on the same Debian base:
#   cpu (default, the last stage): what action.yml runs.
#   gpu (--target gpu): the same files plus the NVIDIA container runtime's variables, so `docker run --gpus all`,
#       GitLab's `--docker-gpus all` and hosts whose default runtime is nvidia give it the host's driver and
#       nvidia-smi. CUDA itself comes with the framework the user installs (torch, jax and tensorflow wheels from PyPI
#       carry their own CUDA libraries), so no CUDA base image is needed.
# BASE_IMAGE: python:3.11-slim-bookworm for releases; any Debian/Ubuntu base without Python (a debootstrapped bookworm
# in tests/image/build_local.sh) gets Python from apt.
# GitHub's container-action rules: runs as root (no USER), no WORKDIR (GitHub mounts the workspace and sets the
# working directory), ENTRYPOINT in exec form with an absolute path.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends binutils; \
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
      apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates; \
    fi; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
# Dependencies first, from pyproject.toml alone, so a change to cml-action's code rebuilds only the small layer below.
COPY pyproject.toml /src/
COPY docker/constraints.txt docker/requirements.py /src/docker/
# The pip certificate (a corporate or test proxy's CA) is a build secret: used here, never stored in a layer.
RUN --mount=type=secret,id=pipcert,required=false \
    set -eux; \
    if [ -s /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --upgrade pip; \
    python3 /src/docker/requirements.py /src/pyproject.toml dvc notebooks tensorboard >/src/docker/requirements.txt; \
    /opt/venv/bin/pip install --no-cache-dir -c /src/docker/constraints.txt -r /src/docker/requirements.txt scikit-learn
COPY cml_action /src/cml_action
# pyproject.toml names README.md as the long description; the image needs none, and leaving the real one out keeps a
# documentation edit from rebuilding the image.
RUN printf 'cml-action\n' >/src/README.md
RUN --mount=type=secret,id=pipcert,required=false \
    set -eux; \
    if [ -s /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi; \
    /opt/venv/bin/pip install --no-cache-dir --no-deps /src; \
    /opt/venv/bin/pip check
COPY docker/slim.sh /src/docker/
RUN sh /src/docker/slim.sh /opt/venv

FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends git git-lfs ca-certificates; \
    if ! command -v python3 >/dev/null; then apt-get install -y --no-install-recommends python3; fi; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /usr/share/doc/* /usr/share/man/* \
      /usr/share/info/* /usr/share/locale/* /usr/share/bash-completion
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 entrypoint.py /app/entrypoint.py
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
ENTRYPOINT ["/app/entrypoint.py"]

FROM runtime AS gpu
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime AS cpu
