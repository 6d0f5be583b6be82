"""Helpers of the chart tests: find helm and the CRDs, render the chart, pick objects."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "petit"
VALUES_DIR = Path(__file__).resolve().parent / "values"
RELEASE = "petit"
NAMESPACE = "llm"

# Values files rendered by the tests, by case name ("default": the chart's own values.yaml).
CASES: dict[str, tuple[str, ...]] = {
    "default": (),
    "minimal": ("minimal.yaml",),
    "gpu-example": ("gpu-example.yaml",),
    "everything": ("everything.yaml",),
    "scarce": ("scarce.yaml",),
    "tenants": ("tenants.yaml",),
    "tenants-external": ("tenants-external.yaml",),
    "kind": (str(REPO / "deploy" / "kind" / "values-cpu.yaml"),),
}

RAYSERVICE_CRD = Path("kuberay-v1.7.0/crds/ray.io_rayservices.yaml")
SERVICEMONITOR_CRD = Path("prometheus-operator/monitoring.coreos.com_servicemonitors.yaml")


def find_helm() -> str | None:
    local = REPO / ".tools" / "bin" / "helm"
    if local.exists() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


def schemas_dir() -> Path:
    return Path(os.environ.get("PETIT_K8S_SCHEMAS") or (REPO.parent / "shared" / "k8s")).resolve()


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.stdout) if d]


@cache
def _run_helm(helm: str, args: tuple[str, ...]) -> HelmResult:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    return HelmResult(proc.returncode, proc.stdout, proc.stderr)


def _values_args(files: tuple[str | Path, ...]) -> tuple[str, ...]:
    args: list[str] = []
    for f in files:
        args += ["-f", str(VALUES_DIR / f if not Path(f).is_absolute() else f)]
    return tuple(args)


class Helm:
    """Runs the helm binary on the chart; results are cached per argument list."""

    def __init__(self, binary: str):
        self.binary = binary

    def lint(self, *files: str | Path) -> HelmResult:
        return _run_helm(self.binary, ("lint", "--strict", str(CHART), *_values_args(files)))

    def template(self, *files: str | Path) -> HelmResult:
        args = ("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds")
        return _run_helm(self.binary, (*args, *_values_args(files)))

    def notes(self, *files: str | Path) -> str:
        """NOTES.txt as `helm install` prints it (client-side dry run: no cluster needed)."""
        args = ("install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE)
        result = _run_helm(self.binary, (*args, *_values_args(files)))
        if result.returncode != 0:
            pytest.fail(f"helm install --dry-run=client failed:\n{result.stderr}")
        return result.stdout.partition("NOTES:")[2]

    def render(self, *files: str | Path) -> list[dict[str, Any]]:
        """Rendered objects (test hooks included); fails the test if helm fails."""
        result = self.template(*files)
        if result.returncode != 0:
            pytest.fail(f"helm template {' '.join(map(str, files))} failed:\n{result.stderr}")
        return result.docs


def chart_values(*files: str) -> dict[str, Any]:
    """The values helm uses for `files`: values.yaml merged with them (maps merge, lists replace)."""
    merged = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in files:
        merged = _merge(merged, yaml.safe_load((VALUES_DIR / f).read_text()) or {})
    return merged


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return over


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def serve_config(rayservice: dict[str, Any]) -> dict[str, Any]:
    """serveConfigV2, parsed (the CRD keeps it as an opaque string)."""
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])


def worker_groups(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    return rayservice["spec"]["rayClusterConfig"].get("workerGroupSpecs", [])


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders, named: Deployments, StatefulSets, Pods, RayService head and workers."""
    specs: list[tuple[str, dict[str, Any]]] = []
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in ("Deployment", "StatefulSet"):
            specs.append((name, d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            specs.append((name, d["spec"]))
        elif d["kind"] == "RayService":
            cluster = d["spec"]["rayClusterConfig"]
            specs.append((f"{name}/head", cluster["headGroupSpec"]["template"]["spec"]))
            for g in cluster.get("workerGroupSpecs", []):
                specs.append((f"{name}/{g['groupName']}", g["template"]["spec"]))
    return specs
