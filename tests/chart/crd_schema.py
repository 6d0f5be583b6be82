"""Validate custom resources against their CRD the way the API server would.

The API server, on create with strict field validation (kubectl's default):
drops null values, applies the schema's defaults, rejects fields the
structural schema does not know (unless `x-kubernetes-preserve-unknown-fields`
is set), checks types/patterns/enums/bounds, and rejects duplicate keys in
`x-kubernetes-list-type: map` lists. This module does the same offline with
`jsonschema`. Not covered: CEL rules (`x-kubernetes-validations`) and
`format` bounds such as int32 ranges.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.33.0"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_crd_schema(path: Path, version: str = "v1") -> dict[str, Any]:
    """The `openAPIV3Schema` of `version` in the CRD file at `path`. Raises KeyError if absent."""
    with path.open() as f:
        crd = yaml.load(f, Loader=_LOADER)
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise KeyError(f"{path}: no version {version}")


def strict_schema(node: Any) -> Any:
    """A copy of a structural schema where objects reject unknown fields.

    An object keeps accepting unknown fields only where the CRD says so: an
    `additionalProperties` schema, or `x-kubernetes-preserve-unknown-fields`.
    """
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in ("default", "enum", "example") else strict_schema(v)) for k, v in node.items()}
    if "properties" in out:
        out["properties"] = {k: strict_schema(v) for k, v in node["properties"].items()}
    is_object = node.get("type") == "object" or "properties" in node
    if is_object and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def drop_nulls(value: Any) -> Any:
    """`value` without null map entries (the API server prunes them)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill absent fields that have a schema `default`, recursively, in place; returns `value`."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub:
                apply_defaults(sub, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)
    return value


def list_key_errors(schema: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    """Duplicate entries in `x-kubernetes-list-type` map/set lists (env names, ports, ...)."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub:
                yield from list_key_errors(sub, item, f"{path}/{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: list[Any] = []
        for i, item in enumerate(value):
            ident = tuple(item.get(k) for k in keys) if list_type == "map" and isinstance(item, dict) else item
            if list_type in ("map", "set") and ident in seen:
                yield f"{path}/{i}: duplicate entry {ident!r} in a list-type={list_type} list"
            seen.append(ident)
            yield from list_key_errors(schema["items"], item, f"{path}/{i}")


def metadata_errors(obj: dict[str, Any]) -> list[str]:
    """ObjectMeta checks (names, labels, annotations), borrowed from a ConfigMap's schema."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    try:
        kubernetes_validate.validate(probe, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"metadata/{'/'.join(map(str, err.path))}: {err.message}"]
    return []


class CustomResourceValidator:
    """Validates objects of one CRD version like the API server's create path."""

    def __init__(self, crd_schema: dict[str, Any]):
        self.raw = crd_schema
        strict = strict_schema(crd_schema)
        strict["properties"]["metadata"] = {"type": "object"}  # checked as ObjectMeta instead
        self.validator = jsonschema.Draft7Validator(strict)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Every problem found, as 'json/path: message'; empty when the object would be accepted."""
        value = apply_defaults(self.raw, drop_nulls(copy.deepcopy(obj)))
        found = [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(self.validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        ]
        found += list(list_key_errors(self.raw, value))
        found += metadata_errors(value)
        return found
