#!/bin/sh
# Headless Chromium for the isolated MLflow UI test (tests/test_mlflow_ui.py), from Debian.
# Idempotent: does nothing when a chromium is already on PATH. Not root and none installed:
# says so and exits 0 (the UI test then skips with the same reason).
set -e
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" != 0 ]; then
  echo "tests/system_deps/chromium.sh: chromium missing and not root: the MLflow UI test will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium >/dev/null \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
