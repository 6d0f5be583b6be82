"""Reading the load tests' YAML files (scenario, SLA, price table) strictly.

Every problem is reported as a :class:`LoadTestInputError` whose message names
the file, the line and the key, e.g.::

    examples/sla.yaml:7: slas.auto.ttft_ms.p95: Input should be greater than 0

Pure module: no Locust, no I/O beyond reading the named file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class LoadTestInputError(ValueError):
    """A scenario, SLA, trace, prompt or price file is missing or invalid."""


def read_text(path: Path, what: str) -> str:
    """The file's text. Raises LoadTestInputError naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadTestInputError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LoadTestInputError(f"{path}: cannot read {what} file: {err}") from None


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at `loc`, or of its deepest existing parent.

    Parts that are no YAML key (pydantic puts a union's tag in the path) are skipped;
    an unknown key points at the key itself.
    """
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if pair is None:
                continue
            node, line = pair[1], pair[0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


def format_errors(err: ValidationError, root: yaml.Node | None, source: str, what: str) -> str:
    """One line per problem: `file:line: key.path: message`."""
    lines = [f"{source}: invalid {what} ({err.error_count()} problem(s))"]
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        msg = "unknown key (check the spelling)" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {where}: {key}: {msg}")
    return "\n".join(lines)


def parse_yaml(text: str, model: type[M], source: str, what: str) -> M:
    """Validate YAML text against `model`. Raises LoadTestInputError naming `source` and lines."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise LoadTestInputError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        raise LoadTestInputError(f"{source}: the {what} file is empty")
    if not isinstance(data, dict):
        raise LoadTestInputError(f"{source}:1: the {what} must be a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise LoadTestInputError(format_errors(err, root, source, what)) from None


def load_yaml(path: str | Path, model: type[M], what: str) -> M:
    """Read and validate a YAML file. Raises LoadTestInputError."""
    p = Path(path)
    return parse_yaml(read_text(p, what), model, str(p), what)
