#!/bin/bash
# cml-action runner pod: one job, then exit. Sent as the runner container's command; it holds no secret.
# The one-job registration was copied from the pod's Secret by the init container into a memory-backed file that
# only this container mounts; it is read once and deleted. restartPolicy Never means that when this script ends
# the pod is done and its GPUs go back to the cluster; activeDeadlineSeconds caps the whole pod's life.
# Settings come from the pod spec's environment (none of them secret):
#   CML_FORGE github|gitlab, CML_RUNNER_NAME, CML_IDLE_TIMEOUT (s), CML_HANDOVER (registration file),
#   CML_RUNNER_HOME (GitHub: the runner's folder), CML_WORK (jobs' work folder), CML_FORGE_URL and
#   CML_GITLAB_RUNNER (GitLab), CML_TERMINATION_LOG (the container's terminationMessagePath).
set -uo pipefail

: "${CML_FORGE:?}" "${CML_RUNNER_NAME:?}" "${CML_IDLE_TIMEOUT:?}" "${CML_HANDOVER:?}" "${CML_WORK:?}"
TERMINATION_LOG=${CML_TERMINATION_LOG:-/dev/termination-log}
IDLE_FLAG=$(mktemp -u)

log() { printf '%s cml-runner %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$CML_RUNNER_NAME" "$*"; }

# The reason also goes to the termination message, where `kubectl describe pod` and runner-launch read it.
finish() {
  log "$1"
  printf '%s\n' "$1" >"$TERMINATION_LOG" 2>/dev/null || true
  exit "$2"
}

job_started() {
  if [ "$CML_FORGE" = github ]; then
    compgen -G "$CML_RUNNER_HOME/_diag/Worker_*" >/dev/null
  else
    compgen -G "$CML_WORK/*" >/dev/null
  fi
}

if [ ! -s "$CML_HANDOVER" ]; then
  finish "no registration was handed over" 1
fi
secret=$(<"$CML_HANDOVER")
rm -f "$CML_HANDOVER"
mkdir -p "$CML_WORK"
log "starting the runner; waiting up to ${CML_IDLE_TIMEOUT}s for one job"

if [ "$CML_FORGE" = github ]; then
  # a JIT config is good for one registration and one job; run.sh exits after it
  cd "$CML_RUNNER_HOME" || finish "no runner in $CML_RUNNER_HOME" 1
  ./run.sh --jitconfig "$secret" &
else
  # the token goes through the environment of gitlab-runner alone (never its arguments, readable in /proc);
  # the job runs in this container (shell executor), which holds the GPUs
  CI_SERVER_TOKEN=$secret "${CML_GITLAB_RUNNER:?}" run-single --url "${CML_FORGE_URL:?}" --executor shell \
    --builds-dir "$CML_WORK" --cache-dir "$CML_WORK/.cache" --max-builds 1 --wait-timeout "$CML_IDLE_TIMEOUT" \
    --name "$CML_RUNNER_NAME" &
fi
runner=$!
unset secret

# Idle watchdog: no job within the idle timeout -> stop the runner, end the pod.
(
  sleep "$CML_IDLE_TIMEOUT"
  if ! job_started; then
    : >"$IDLE_FLAG"
    kill -TERM "$runner" 2>/dev/null
  fi
) &
watchdog=$!

trap 'kill -TERM "$runner" 2>/dev/null; kill "$watchdog" 2>/dev/null; finish "stopped by the cluster (pod deleted or deadline reached)" 143' TERM INT

wait "$runner"
status=$?
kill "$watchdog" 2>/dev/null
if [ -e "$IDLE_FLAG" ]; then
  rm -f "$IDLE_FLAG"
  finish "no job started within ${CML_IDLE_TIMEOUT}s (runner-idle-timeout)" 0
fi
finish "runner exited with status $status after its job" "$status"
