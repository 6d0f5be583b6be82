#!/usr/bin/env bash
# Petit on a local kind cluster, CPU only, end to end:
#   kind cluster -> Petit image (CPU, weights baked in) -> KubeRay operator 1.7.0
#   -> helm install Petit (deploy/kind/values-cpu.yaml) -> wait -> helm test.
# Needs docker, kind and kubectl on PATH, and helm (`make tools` puts one in
# .tools/bin). Re-running is safe: each step skips or upgrades what exists.
# Environment: CLUSTER (petit), NAMESPACE (petit), IMAGE (petit:kind),
# SKIP_BUILD=1 to reuse an image, EXTRA_VALUES=file.yaml for more values.
set -euo pipefail

cd "$(dirname "$0")/../.."
CLUSTER=${CLUSTER:-petit}
NAMESPACE=${NAMESPACE:-petit}
IMAGE=${IMAGE:-petit:kind}
RELEASE=petit
KUBERAY_VERSION=1.7.0
VALUES=deploy/kind/values-cpu.yaml

say() { echo "==> [kind] $*"; }
die() { echo "error: [kind] $*" >&2; exit 1; }

HELM=.tools/bin/helm
[ -x "$HELM" ] || HELM=$(command -v helm) || die "no helm: run 'make tools' or install helm"
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is Docker running?)"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "cluster '$CLUSTER' exists"
else
  say "creating kind cluster '$CLUSTER'"
  kind create cluster --name "$CLUSTER" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building $IMAGE (CPU build of vLLM; preparing the local fleet's weights; first time ~10 min)"
  docker build -f deploy/Dockerfile -t "$IMAGE" \
    --build-arg BASE_IMAGE=python:3.11-slim-bookworm \
    --build-arg PETIT_EXTRAS=cpu \
    --build-arg PREPARE_FLEET=deploy/fleet.local.yaml .
fi
say "loading $IMAGE into the cluster's nodes"
kind load docker-image "$IMAGE" --name "$CLUSTER"

say "installing the KubeRay operator $KUBERAY_VERSION"
"$HELM" repo add kuberay https://ray-project.github.io/kuberay-helm/ --force-update >/dev/null
"$HELM" upgrade --install kuberay-operator kuberay/kuberay-operator --version "$KUBERAY_VERSION" \
  --namespace kuberay-system --create-namespace --wait --timeout 5m

say "installing Petit ($VALUES)"
extra=()
[ -n "${EXTRA_VALUES:-}" ] && extra=(-f "$EXTRA_VALUES")
"$HELM" upgrade --install "$RELEASE" helm/petit --namespace "$NAMESPACE" --create-namespace \
  -f "$VALUES" ${extra[@]+"${extra[@]}"} \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}"

say "waiting for the RayService to be ready (engines start in a few minutes)"
kubectl -n "$NAMESPACE" wait "rayservice/$RELEASE" --for=condition=Ready --timeout=20m \
  || { kubectl -n "$NAMESPACE" get rayservice,pods; die "RayService not ready; see: kubectl -n $NAMESPACE describe rayservice $RELEASE"; }

say "helm test: GET /v1/models through the Service"
"$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 10m

cat <<EOT
==> [kind] Petit is up. Try it:
  kubectl -n $NAMESPACE port-forward svc/$RELEASE 8000:8000 &
  curl -s localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "auto", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 32}'
A quick load test: 64 requests, 8 at a time (status and seconds per request):
  seq 64 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
    localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model": "auto", "messages": [{"role": "user", "content": "Count to {}"}], "max_tokens": 64}'
For more, point Petit's Locust load tests (loadtests/) at --host http://127.0.0.1:8000.
Remove everything: kind delete cluster --name $CLUSTER
EOT
