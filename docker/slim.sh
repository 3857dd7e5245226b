#!/bin/sh
# Slim the built virtual environment (builder stage of the Dockerfile):  sh docker/slim.sh /opt/venv
# What goes and why (sizes measured on the real build, see README "The image"):
#   - tests folders and __pycache__ left by pip: never imported by cml-action;
#   - debug symbols of the wheels' own shared libraries (strip --strip-unneeded; about 50 MB). Not the libraries that
#     auditwheel vendored into *.libs/ (patchelf-edited: stripping breaks their load commands, "ELF load command
#     address/offset not page-aligned"), and each stripped file must still load (dlopen), else it is put back;
#   - tensorboard_data_server's 20 MB Rust server: only `tensorboard --load_fast` starts it, we read event files;
#   - nbdime's web application (about 18 MB of JavaScript): we use its text diff only.
# Then byte-code for what a report run imports (start-up path, report, posting), so a container start does not
# compile them again each time; the rest (cloud SDKs, DVC) compiles on first import. unchecked-hash: the image is
# immutable, so the sources are not re-read to validate the cache.
set -eu
venv=$1
site=$(echo "$venv"/lib/python3*/site-packages)
find "$venv" -name '__pycache__' -type d -prune -exec rm -rf {} +
find "$site" -mindepth 2 -name tests -type d -prune -exec rm -rf {} +
find "$site" -type f \( -name '*.so' -o -name '*.so.*' \) ! -path '*.libs/*' | while read -r lib; do
  cp -p "$lib" "$lib.unstripped"
  if strip --strip-unneeded "$lib" 2>/dev/null \
     && "$venv/bin/python" -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$lib" 2>/dev/null; then
    rm "$lib.unstripped"
  else
    mv "$lib.unstripped" "$lib"
  fi
done
rm -rf "$site/tensorboard_data_server/bin" "$site/nbdime/webapp/static" "$site/nbdime/webapp/testnotebooks"
compiled=""
for pkg in cml_action yaml PIL cycler dateutil kiwisolver matplotlib numpy packaging pandas \
    pyparsing six pytz tzdata contourpy github gitlab requests requests_toolbelt urllib3 charset_normalizer idna \
    certifi jwt nacl cryptography deprecated wrapt typing_extensions docker; do
  if [ -e "$site/$pkg" ]; then compiled="$compiled $site/$pkg"; fi
done
for mod in six typing_extensions; do
  if [ -e "$site/$mod.py" ]; then compiled="$compiled $site/$mod.py"; fi
done
# shellcheck disable=SC2086  # one path per word
"$venv/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash $compiled
