#!/usr/bin/env bash
# The setup action's one step (setup/action.yml). Installs the cml-action source this action was checked out with
# (the folder above this one) into the job's Python and puts a `cml-action` command on PATH that runs with exactly
# that interpreter, so `python` in the training command stays the job's own.
#   CML_SETUP_PYTHON  interpreter (default: python, else python3)
#   CML_SETUP_EXTRAS  extras, comma separated (dvc, notebooks, tensorboard)
set -euo pipefail

die() { echo "::error title=cml-action setup::$*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
if [ ! -f "$src/pyproject.toml" ] || [ ! -d "$src/cml_action" ]; then die "no cml-action source next to $here"; fi

py=${CML_SETUP_PYTHON:-}
if [ -n "$py" ]; then py=$(command -v "$py") || die "python interpreter not found: ${CML_SETUP_PYTHON}"; fi
# Every Python below runs from a folder of our own: `python -c`, `-m` and stdin put the working directory first on
# sys.path, and the working directory is the repository (a pull request's files: a cml_action/ or pip/ of its own).
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cml-action-setup.XXXXXX")
cd "$work"
if [ -z "$py" ]; then py=$(command -v python || command -v python3 || true); fi
[ -n "$py" ] || die "no python on PATH: set one up first (actions/setup-python, conda, a virtual environment)"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "cml-action needs Python 3.10 or newer; $py is $("$py" -V 2>&1)"
if "$py" - <<'PY'
import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
PY
then
  die "$py is the system's externally managed Python: set up your own first (actions/setup-python, or python3 -m venv and put its bin on PATH)"
fi

extras=${CML_SETUP_EXTRAS// /}
[[ "$extras" =~ ^[a-z,]*$ ]] || die "extras: letters and commas only (dvc,notebooks,tensorboard), got: $extras"

# Build from a copy of what the package needs, so nothing is written into the action's own folder.
mkdir "$work/src"
cp -R "$src/pyproject.toml" "$src/README.md" "$src/cml_action" "$work/src/"
"$py" -m pip install --disable-pip-version-check --no-input --quiet "$work/src${extras:+[$extras]}" \
  || die "pip could not install cml-action into $py"
rm -rf "$work/src"
version=$("$py" -c 'import cml_action; print(cml_action.__version__)')
cd / && rm -rf "$work"
bin="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cml-action-bin"
mkdir -p "$bin"
# Not `python -m`: that puts the working directory (the pull request's files) first on sys.path, so a cml_action/ or
# yaml.py in the repository would run with the token. The first sys.path entry of -c is that directory too: dropped.
printf '#!/usr/bin/env bash\nexec %q -c %q "$@"\n' "$py" \
  'import sys; sys.path[:1] = [p for p in sys.path[:1] if p not in ("", ".")]; from cml_action.cli import main; sys.exit(main())' >"$bin/cml-action"
chmod 0755 "$bin/cml-action"
if [ -n "${GITHUB_PATH:-}" ]; then echo "$bin" >>"$GITHUB_PATH"; fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "version=$version"; echo "python=$py"; } >>"$GITHUB_OUTPUT"
fi
echo "cml-action $version installed into $py"
