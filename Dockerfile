# syntax=docker/dockerfile:1.7
# cml-action's prebuilt image. One Dockerfile for every variant:
#   CPU: BASE_IMAGE=python:3.11-slim-bookworm (default)
#   GPU: BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 (nvidia-smi comes from the host's driver at run time)
#   any Debian/Ubuntu base without Python (a debootstrapped bookworm in tests/image/build_local.sh) gets it from apt.
# GitHub's container-action rules: runs as root (no USER), no WORKDIR (GitHub mounts the workspace and sets the
# working directory), ENTRYPOINT in exec form with an absolute path.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN set -eux; \
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
      apt-get update; \
      apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates; \
      apt-get clean; rm -rf /var/lib/apt/lists/*; \
    fi
COPY pyproject.toml README.md /src/
COPY cml_action /src/cml_action
COPY docker/constraints.txt /src/docker/constraints.txt
# The pip certificate (a corporate or test proxy's CA) is a build secret: used here, never stored in a layer.
RUN --mount=type=secret,id=pipcert,required=false \
    set -eux; \
    if [ -s /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --upgrade pip; \
    /opt/venv/bin/pip install --no-cache-dir -c /src/docker/constraints.txt \
      "/src[dvc,notebooks,tensorboard]" scikit-learn; \
    find /opt/venv -name '__pycache__' -type d -prune -exec rm -rf {} +; \
    find /opt/venv -name 'tests' -type d -path '*/site-packages/*/tests' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends git git-lfs ca-certificates curl; \
    if ! command -v python3 >/dev/null; then apt-get install -y --no-install-recommends python3; fi; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /usr/share/doc/* /usr/share/man/*
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 entrypoint.py /app/entrypoint.py
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
ENTRYPOINT ["/app/entrypoint.py"]
