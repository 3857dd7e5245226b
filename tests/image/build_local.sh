#!/usr/bin/env bash
# Build the CPU image for real without a Docker engine, then run its entrypoint inside the built filesystem.
#   tests/image/build_local.sh [TAG]
# podman (vfs storage, chroot isolation, host network) builds from a Debian bookworm base made with debootstrap
# and cached, so the only downloads after the first run are what the Dockerfile's layers need.
# The host CA bundle reaches pip as a build secret; it is not stored in the image.
# Prints "image size: N bytes" and "report: ok" lines that tests/test_image.py checks.
set -euo pipefail

TAG=${1:-localhost/cml-action:test}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${CML_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cml-action-image}
BASE=localhost/cml-bookworm-minbase:latest
PODMAN=(podman --storage-driver vfs --root "$CACHE/storage" --runroot "$CACHE/run")
CA=${CML_PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

die() { echo "build_local: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (podman's vfs/chroot build and chroot need it)"
for tool in podman debootstrap; do command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install $tool)"; done
mkdir -p "$CACHE"

if ! "${PODMAN[@]}" image exists "$BASE"; then
  echo "build_local: making the base with debootstrap (cached in $CACHE)"
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  debootstrap --variant=minbase bookworm "$rootfs" "${CML_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see $CACHE/debootstrap.log"
  tar -C "$rootfs" -c . | "${PODMAN[@]}" import - "$BASE" >/dev/null
  rm -rf "$rootfs"
fi

secret=()
[ -s "$CA" ] && secret=(--secret "id=pipcert,src=$CA")
echo "build_local: building $TAG"
"${PODMAN[@]}" build --isolation chroot --network host --build-arg "BASE_IMAGE=$BASE" "${secret[@]}" \
  --layers -t "$TAG" -f "$ROOT/Dockerfile" "$ROOT"

size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$TAG")
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB)"

# The pip certificate must not be in any layer.
img=$("${PODMAN[@]}" image mount "$TAG")
cleanup_img() { "${PODMAN[@]}" image unmount "$TAG" >/dev/null 2>&1 || true; }
trap cleanup_img EXIT
[ ! -e "$img/run/secrets/pipcert" ] || die "the pip certificate leaked into the image"
[ -x "$img/app/entrypoint.py" ] || die "/app/entrypoint.py is missing or not executable"
if grep -rqs "safe.directory" "$img/etc/gitconfig" "$img/root/.gitconfig"; then die "a global safe.directory is configured"; fi

# Run the entrypoint inside the image on the example project, local mode, workspace owned by another uid.
out=$(mktemp -d)
trap 'cleanup_img; rm -rf "$out"' EXIT
CML_IMAGE_OUT="$out/ws" "$ROOT/tests/image/run_in_image.sh" "$TAG" "$ROOT/workflows-examples/example-project" \
  --run "python train.py" --metrics metrics.json --params params.yaml --plots "confusion_matrix.png importance.csv" \
  || die "the entrypoint failed inside the image"
report="$out/ws/cml-report/report.md"
[ -s "$report" ] || die "no report written inside the image"
grep -q "| Metric |" "$report" || die "the report has no metrics table"
echo "report: ok ($(wc -c <"$report") bytes)"
