#!/usr/bin/env bash
# Headless Chromium for the load-test report rendering test (Debian's package).
# Installs it when missing and this runs as root with apt-get; otherwise says why
# the test will skip. Never fails the build: the test itself reports the skip.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> [tools] installing Debian's chromium for the report rendering test (~1 minute)"
  apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    && { echo "==> [tools] chromium installed"; exit 0; }
fi
echo "==> [tools] chromium not available: the report rendering test will skip (apt-get install chromium)"
exit 0
