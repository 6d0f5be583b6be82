#!/usr/bin/env bash
# Debian's redis-server for the tenant store's Redis tests (the tests start and stop
# their own server). Installs it when missing and this runs as root with apt-get;
# otherwise says why those tests will skip. Never fails the build.
set -uo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> [tools] installing Debian's redis-server for the tenant store tests (~30 s)"
  apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 \
    && { echo "==> [tools] redis-server installed"; exit 0; }
fi
echo "==> [tools] redis-server not available: the Redis store tests will skip (apt-get install redis-server)"
exit 0
