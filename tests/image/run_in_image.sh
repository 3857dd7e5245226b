#!/usr/bin/env bash
# Run the image's entrypoint on a copy of a project, inside a writable container filesystem of the image,
# with chroot (no container engine needed; shares the host network, so loopback stand-ins are reachable).
#   tests/image/run_in_image.sh TAG PROJECT_DIR [entrypoint args...]
# Environment variables named in CML_PASS_ENV (space separated) are passed in; nothing else is.
# The project is copied to /github/workspace, owned by uid 1001 as GitHub's checkout is, and committed to git.
# Prints the report path inside the host filesystem as the last line: "report-file: PATH".
set -euo pipefail

TAG=$1; PROJECT=$2; shift 2
CACHE=${CML_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cml-action-image}
PODMAN=(podman --storage-driver vfs --root "$CACHE/storage" --runroot "$CACHE/run")
OUT=${CML_IMAGE_OUT:?set CML_IMAGE_OUT to a folder that receives the workspace after the run}

ctr=$("${PODMAN[@]}" create "$TAG")
root=$("${PODMAN[@]}" mount "$ctr")
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { "${PODMAN[@]}" umount "$ctr" >/dev/null 2>&1 || true; "${PODMAN[@]}" rm -f "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
ws="$root/github/workspace"
mkdir -p "$ws"
cp -r "$PROJECT/." "$ws/"
rm -rf "$ws/cml-report"
chroot "$root" /bin/sh -c 'cd /github/workspace && { [ -d .git ] || { git init -q -b main && git -c user.name=t -c user.email=t@e add -A && git -c user.name=t -c user.email=t@e commit -qm project; }; }'
chown -R 1001:1001 "$ws"

envs=(PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin HOME=/root)
for name in ${CML_PASS_ENV:-}; do envs+=("$name=${!name-}"); done
args=""
for arg in "$@"; do args+=" $(printf '%q' "$arg")"; done
status=0
unshare --mount --fork /bin/sh -c "
  mount --bind /dev '$root/dev' && mount -t proc proc '$root/proc' &&
  chroot '$root' /usr/bin/env -i $(printf '%q ' "${envs[@]}") /bin/bash -c 'cd /github/workspace && exec /app/entrypoint.py $args'
" || status=$?
rm -rf "$OUT" && mkdir -p "$OUT" && cp -r "$ws/." "$OUT/"
echo "report-file: $OUT/cml-report/report.md"
exit $status
