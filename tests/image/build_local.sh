#!/usr/bin/env bash
# Build the image for real without a Docker engine, once per content: tests/image/build_local.sh [cpu|gpu]
# podman (vfs storage, chroot isolation, host network) builds the Dockerfile's target from a Debian bookworm base made
# with debootstrap and cached. The tag is the hash of everything the build reads (Dockerfile, docker/, pyproject.toml,
# cml_action/, entrypoint.py), so a second call with the same files builds nothing; podman's layer cache
# makes a code-only change rebuild only the small cml-action layer.
# The host CA bundle reaches pip as a build secret; it is not stored in the image.
# Prints "image: TAG", "image size: N bytes" and the layer sizes; then checks the container-action rules on the result.
set -euo pipefail

TARGET=${1:-cpu}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${CML_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cml-action-image}
BASE=localhost/cml-bookworm-minbase:latest
PODMAN=(podman --storage-driver vfs --root "$CACHE/storage" --runroot "$CACHE/run")
CA=${CML_PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

die() { echo "build_local: $*" >&2; exit 1; }
case "$TARGET" in cpu|gpu) ;; *) die "target is cpu or gpu, not $TARGET" ;; esac
[ "$(id -u)" = 0 ] || die "run as root (podman's vfs/chroot build and chroot need it)"
for tool in podman debootstrap; do command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install $tool)"; done
mkdir -p "$CACHE"

hash=$(cd "$ROOT" && find Dockerfile .dockerignore docker pyproject.toml entrypoint.py cml_action -type f \
         ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
TAG="localhost/cml-action:$TARGET-$hash"

if ! "${PODMAN[@]}" image exists "$BASE"; then
  echo "build_local: making the base with debootstrap (cached in $CACHE)"
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  debootstrap --variant=minbase bookworm "$rootfs" "${CML_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see $CACHE/debootstrap.log"
  tar -C "$rootfs" -c . | "${PODMAN[@]}" import - "$BASE" >/dev/null
  rm -rf "$rootfs"
fi

if "${PODMAN[@]}" image exists "$TAG"; then
  echo "build_local: $TAG is built already"
else
  secret=()
  [ -s "$CA" ] && secret=(--secret "id=pipcert,src=$CA")
  echo "build_local: building $TAG"
  "${PODMAN[@]}" build --isolation chroot --network host --build-arg "BASE_IMAGE=$BASE" "${secret[@]}" \
    --layers --target "$TARGET" -t "$TAG" -f "$ROOT/Dockerfile" "$ROOT" >"$CACHE/build-$TARGET.log" 2>&1 \
    || { tail -40 "$CACHE/build-$TARGET.log" >&2; die "the build failed: see $CACHE/build-$TARGET.log"; }
fi

# vfs keeps a full copy per layer: drop this target's superseded images, and when the disk runs low (under
# 20 GiB free) the build layers no image uses any more (a later code change then rebuilds the builder stage).
for old in $("${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep "^localhost/cml-action:$TARGET-" | grep -vxF "$TAG"); do
  "${PODMAN[@]}" rmi "$old" >/dev/null 2>&1 || true
done
if [ "$(df --output=avail -B1G "$CACHE" | tail -1 | tr -d ' ')" -lt 20 ]; then
  "${PODMAN[@]}" image prune -f >/dev/null 2>&1 || true
fi

echo "image: $TAG"
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$TAG")
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB)"
"${PODMAN[@]}" history --format '{{.Size}}	{{.CreatedBy}}' "$TAG" | cut -c1-110 | sed 's/^/layer: /'

# The pip certificate must not be in any layer; the entrypoint is there; git trusts no directory globally.
img=$("${PODMAN[@]}" image mount "$TAG")
cleanup_img() { "${PODMAN[@]}" image unmount "$TAG" >/dev/null 2>&1 || true; }
trap cleanup_img EXIT
[ ! -e "$img/run/secrets/pipcert" ] || die "the pip certificate leaked into the image"
[ -x "$img/app/entrypoint.py" ] || die "/app/entrypoint.py is missing or not executable"
if grep -rqs "safe.directory" "$img/etc/gitconfig" "$img/root/.gitconfig"; then die "a global safe.directory is configured"; fi
echo "checks: ok"
