"""Fleet config -> Helm chart values (`petit helm-values FLEET.yaml > values-fleet.yaml`).

The chart (helm/petit) renders the RayService's `serveConfigV2` from the
`fleet:` value, so the cluster runs the very fleet file the local run uses.
This module adds what the chart cannot guess: one Ray worker group per GPU
shape the fleet needs (plus a CPU group for models with `gpus: 0`), sized from
the models' replica bounds.

It also keeps the fleet part of `helm/petit/values.schema.json` in step with
:class:`serving.fleet.schema.FleetConfig` (`--sync-schema`), so a typo in a model
fails at `helm lint`/`helm template` exactly as it fails at `petit run`.

Pure module: no Ray, vLLM or Kubernetes imports.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from serving.fleet.schema import FleetConfig, FleetConfigError, ModelConfig, load_fleet

# Pod memory for a replica whose fleet entry sets no `memory_gib`.
DEFAULT_GPU_REPLICA_MEMORY_GIB = 32  # per GPU of the replica
DEFAULT_CPU_REPLICA_MEMORY_GIB = 4  # plus the engine's kv_cache_space_gib
# Raylet, Serve proxy and worker processes beside the replica(s) in each pod.
POD_OVERHEAD_MEMORY_GIB = 2
CPU_GROUP = "cpu"
SCHEMA_DEF_PREFIX = "fleet."


@dataclass(frozen=True)
class WorkerGroupPlan:
    """One Ray worker group: identical pods of `gpus` GPUs, `cpus` CPUs and `memory_gib`."""

    name: str
    gpus: int
    cpus: int
    memory_gib: int
    replicas: int
    min_replicas: int
    max_replicas: int

    def to_values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gpus": self.gpus,
            "cpus": self.cpus,
            "memoryGib": self.memory_gib,
            "replicas": self.replicas,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
        }


def pod_gpus(model: ModelConfig) -> int:
    """GPUs of the pod shape that holds `model`: whole GPUs, 0 for CPU models."""
    return math.ceil(model.resources.gpus)


def replicas_per_pod(model: ModelConfig) -> int:
    """How many replicas of `model` share one pod (more than 1 only for fractional GPUs)."""
    gpus = model.resources.gpus
    return max(1, math.floor(pod_gpus(model) / gpus)) if gpus > 0 else 1


def replica_memory_gib(model: ModelConfig) -> float:
    if model.resources.memory_gib is not None:
        return model.resources.memory_gib
    if model.resources.gpus > 0:
        return DEFAULT_GPU_REPLICA_MEMORY_GIB * model.resources.gpus
    return DEFAULT_CPU_REPLICA_MEMORY_GIB + (model.engine.kv_cache_space_gib or 0)


def _pods(replicas: int, per_pod: int) -> int:
    return math.ceil(replicas / per_pod)


def plan_group(name: str, gpus: int, models: list[ModelConfig]) -> WorkerGroupPlan:
    """Size one group so each model's replica bounds map onto whole pods.

    Pods are as large as the largest model of the shape needs; the pod counts
    add up over the models (replicas of different models never share a pod).
    """
    per_pod = {m.id: replicas_per_pod(m) for m in models}
    return WorkerGroupPlan(
        name=name,
        gpus=gpus,
        cpus=max(1, max(math.ceil(m.resources.cpus * per_pod[m.id]) for m in models)),
        memory_gib=max(math.ceil(replica_memory_gib(m) * per_pod[m.id] + POD_OVERHEAD_MEMORY_GIB) for m in models),
        replicas=sum(_pods(m.replicas.start, per_pod[m.id]) for m in models),
        min_replicas=sum(_pods(m.replicas.min, per_pod[m.id]) for m in models),
        max_replicas=sum(_pods(m.replicas.max, per_pod[m.id]) for m in models),
    )


def plan_worker_groups(fleet: FleetConfig) -> list[WorkerGroupPlan]:
    """One group per distinct pod GPU count, CPU group first, then by GPUs ascending."""
    shapes: dict[int, list[ModelConfig]] = {}
    for model in fleet.models:
        shapes.setdefault(pod_gpus(model), []).append(model)
    return [plan_group(CPU_GROUP if gpus == 0 else f"gpu-{gpus}", gpus, shapes[gpus]) for gpus in sorted(shapes)]


def _tidy(node: Any) -> Any:
    """Whole floats back to ints (`gpus: 1`, not `gpus: 1.0`), recursively."""
    if isinstance(node, dict):
        return {k: _tidy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


def fleet_mapping(fleet: FleetConfig) -> dict[str, Any]:
    """The fleet as its YAML was written: only keys the file set, no nulls, `name` always."""
    data = fleet.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    tidy: dict[str, Any] = _tidy({"name": fleet.name, **data})
    return tidy


def fleet_to_values(fleet: FleetConfig) -> dict[str, Any]:
    """Chart values for `fleet`: the `fleet:` mapping and the `workerGroups` it needs."""
    return {
        "fleet": fleet_mapping(fleet),
        "workerGroups": [g.to_values() for g in plan_worker_groups(fleet)],
    }


def render_values(fleet_path: str | Path) -> str:
    """YAML text of the values for the fleet file at `fleet_path`. Raises FleetConfigError."""
    values = fleet_to_values(load_fleet(fleet_path))
    header = (
        f"# Generated by `petit helm-values {fleet_path}`: regenerate it when the fleet changes.\n"
        "# Use with: helm install petit helm/petit -f this-file.yaml\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False, default_flow_style=False)


def write_values(fleet_path: str | Path, out: str | Path | None = None) -> None:
    """Write the values for `fleet_path` to `out` (a path), or stdout when `out` is None or '-'."""
    text = render_values(fleet_path)
    if out is None or str(out) == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)


def fleet_schema_defs() -> dict[str, Any]:
    """JSON-schema `$defs` for FleetConfig and its parts, keyed `fleet.<Model>`."""
    schema = FleetConfig.model_json_schema(ref_template="#/$defs/" + SCHEMA_DEF_PREFIX + "{model}")
    defs = {SCHEMA_DEF_PREFIX + name: body for name, body in schema.pop("$defs", {}).items()}
    defs[SCHEMA_DEF_PREFIX + "FleetConfig"] = schema
    return dict(sorted(defs.items()))


def sync_schema(schema_path: str | Path) -> bool:
    """Replace the `fleet.*` `$defs` of a chart schema with fresh ones. Returns True if it changed."""
    path = Path(schema_path)
    schema = json.loads(path.read_text())
    kept = {k: v for k, v in schema.get("$defs", {}).items() if not k.startswith(SCHEMA_DEF_PREFIX)}
    new_defs = {**kept, **fleet_schema_defs()}
    if schema.get("$defs") == new_defs:
        return False
    schema["$defs"] = new_defs
    path.write_text(json.dumps(schema, indent=2) + "\n")
    return True


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="petit helm-values",
        description="Turn a fleet file into values for the helm/petit chart (fleet + worker groups).",
    )
    p.add_argument("fleet", nargs="?", help="fleet YAML file (e.g. deploy/fleet.gpu.example.yaml)")
    p.add_argument("-o", "--output", default="-", help="values file to write (default: stdout)")
    p.add_argument(
        "--sync-schema",
        metavar="SCHEMA_JSON",
        help="instead: refresh the fleet part of a chart's values.schema.json from FleetConfig",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point. Returns 0 on success, 2 on a bad fleet file or usage."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.sync_schema:
        changed = sync_schema(args.sync_schema)
        print(f"{args.sync_schema}: {'updated' if changed else 'already up to date'}", file=sys.stderr)
        return 0
    if not args.fleet:
        parser.print_usage(sys.stderr)
        print("petit helm-values: error: give a fleet file (or --sync-schema)", file=sys.stderr)
        return 2
    try:
        write_values(args.fleet, args.output)
    except FleetConfigError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
