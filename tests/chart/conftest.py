"""Chart tests: `helm lint`/`helm template` on several values files, offline.

Needs a helm binary (`.tools/bin/helm` from `make tools`, or helm on PATH) and,
for the custom-resource checks, the KubeRay and Prometheus-operator CRDs in
$PETIT_K8S_SCHEMAS (default: ../shared/k8s next to the repository). Tests skip,
saying why, when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chartlib import RAYSERVICE_CRD, SERVICEMONITOR_CRD, Helm, find_helm, schemas_dir


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = find_helm()
    if binary is None:
        pytest.skip("no helm binary: run `make tools` (fetches .tools/bin/helm) or put helm on PATH")
    return Helm(binary)


@pytest.fixture(scope="session")
def k8s_schemas() -> Path:
    path = schemas_dir()
    if not (path / RAYSERVICE_CRD).exists() or not (path / SERVICEMONITOR_CRD).exists():
        pytest.skip(
            f"CRDs not found under {path} (need {RAYSERVICE_CRD} and {SERVICEMONITOR_CRD}): "
            "set PETIT_K8S_SCHEMAS to a folder holding the KubeRay v1.7.0 and Prometheus-operator CRDs"
        )
    return path
