"""Fleet config errors rendered for people: the key path with model ids, and what is wrong (pure)."""

from __future__ import annotations

from pydantic import ValidationError


def _key_path(loc: tuple[int | str, ...], data: object) -> str:
    """Render a pydantic error location with model ids instead of list indexes."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "id" in node[item]:
                label = f"[{item}](id={node[item]['id']})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def format_validation_error(err: ValidationError, data: object, source: str) -> str:
    lines = [f"{source}: invalid fleet config ({err.error_count()} problem(s))"]
    for e in err.errors():
        where = _key_path(tuple(e["loc"]), data)
        if e["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key (check the spelling; see deploy/fleet.local.yaml for every key)")
        else:
            lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)
