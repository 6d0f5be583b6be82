"""Request traces to replay: arrival times and input/output token counts.

Formats:

- `azure`: the Azure LLM inference traces 2023 (CSV with TIMESTAMP,
  ContextTokens, GeneratedTokens; TIMESTAMP is `YYYY-MM-DD HH:MM:SS.fffffff`
  or plain seconds);
- `mooncake`: Mooncake JSONL (`timestamp` in milliseconds, `input_length`,
  `output_length`, optional `hash_ids`).

Relative trace paths resolve against the trace directory: `$PETIT_TRACE_DIR`,
else `../shared/data/traces` beside the repository root. The data is
third-party and is never copied into the repository.

Every problem names the file and line. Pure module.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from loadtests.config_files import LoadTestInputError, read_text

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


@dataclass(frozen=True)
class TraceRequest:
    at_s: float  # arrival, seconds from the first request of the trace
    input_tokens: int
    output_tokens: int


def default_trace_dir() -> Path:
    """`$PETIT_TRACE_DIR`, else `<repo>/../shared/data/traces`."""
    env = os.environ.get("PETIT_TRACE_DIR")
    return Path(env).expanduser() if env else (REPO_ROOT.parent / "shared" / "data" / "traces")


def resolve_trace_path(path: str | Path, trace_dir: Path | None = None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (trace_dir or default_trace_dir()) / p


def _azure_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    head, _, frac = value.strip().partition(".")
    t = datetime.strptime(head, "%Y-%m-%d %H:%M:%S").timestamp()
    return t + (float("0." + frac) if frac else 0.0)


def _count(value: object, field: str) -> int:
    n = int(value)  # type: ignore[arg-type]
    if n < 0:
        raise ValueError(f"{field} must be >= 0, got {n}")
    return n


def parse_azure(text: str, source: str) -> list[tuple[int, float, int, int]]:
    """Rows as (line, time_s, input, output). Raises LoadTestInputError naming file:line."""
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise LoadTestInputError(f"{source}: the trace file is empty")
    missing = [c for c in AZURE_COLUMNS if c not in header]
    if missing:
        raise LoadTestInputError(
            f"{source}:1: missing column(s) {', '.join(missing)} "
            f"(need {', '.join(AZURE_COLUMNS)}; got {', '.join(header)})"
        )
    idx = [header.index(c) for c in AZURE_COLUMNS]
    rows = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            t = _azure_time(row[idx[0]])
            rows.append((line, t, _count(row[idx[1]], "ContextTokens"), _count(row[idx[2]], "GeneratedTokens")))
        except (ValueError, IndexError) as err:
            raise LoadTestInputError(f"{source}:{line}: bad row {row!r}: {err}") from None
    return rows


def parse_mooncake(text: str, source: str) -> list[tuple[int, float, int, int]]:
    """Rows as (line, time_s, input, output); `timestamp` is in milliseconds."""
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            missing = [k for k in ("timestamp", "input_length", "output_length") if k not in obj]
            if missing:
                raise ValueError(f"missing field(s) {', '.join(missing)}")
            rows.append(
                (
                    line,
                    float(obj["timestamp"]) / 1000.0,
                    _count(obj["input_length"], "input_length"),
                    _count(obj["output_length"], "output_length"),
                )
            )
        except (ValueError, TypeError) as err:
            raise LoadTestInputError(f"{source}:{line}: {err}") from None
    return rows


def check_times(rows: list[tuple[int, float, int, int]], source: str) -> None:
    """Reject empty traces, negative and decreasing timestamps, naming the line."""
    if not rows:
        raise LoadTestInputError(f"{source}: the trace has no requests")
    prev = None
    for line, t, _, _ in rows:
        if t < 0:
            raise LoadTestInputError(f"{source}:{line}: negative timestamp {t:g} s")
        if prev is not None and t < prev:
            raise LoadTestInputError(f"{source}:{line}: timestamps are not sorted ({t:g} s after {prev:g} s)")
        prev = t


@dataclass(frozen=True)
class TraceSelection:
    time_scale: float = 1.0  # replay time = trace time * time_scale (0.1 = 10x faster)
    start_s: float = 0.0  # skip the trace's first start_s seconds
    window_s: float | None = None  # keep only this many trace seconds
    max_requests: int | None = None
    max_input_tokens: int | None = None  # clip (the local CPU fleet has small context windows)
    max_output_tokens: int | None = None


def load_trace(
    path: str | Path, fmt: str, selection: TraceSelection = TraceSelection(), trace_dir: Path | None = None
) -> list[TraceRequest]:
    """Read, validate, select and time-scale a trace. Raises LoadTestInputError."""
    p = resolve_trace_path(path, trace_dir)
    if fmt == "azure":
        rows = parse_azure(read_text(p, "trace"), str(p))
    elif fmt == "mooncake":
        rows = parse_mooncake(read_text(p, "trace"), str(p))
    else:
        raise LoadTestInputError(f"{p}: unknown trace format {fmt!r} (use azure or mooncake)")
    check_times(rows, str(p))
    return select(rows, selection, str(p))


def select(rows: list[tuple[int, float, int, int]], sel: TraceSelection, source: str) -> list[TraceRequest]:
    t0 = rows[0][1] + sel.start_s
    out = []
    for _, t, n_in, n_out in rows:
        rel = t - t0
        if rel < 0:
            continue
        if sel.window_s is not None and rel > sel.window_s:
            break
        n_in = min(n_in, sel.max_input_tokens) if sel.max_input_tokens else n_in
        n_out = min(n_out, sel.max_output_tokens) if sel.max_output_tokens else n_out
        out.append(TraceRequest(rel * sel.time_scale, max(n_in, 1), max(n_out, 1)))
        if sel.max_requests is not None and len(out) >= sel.max_requests:
            break
    if not out:
        raise LoadTestInputError(f"{source}: no request left after start_s={sel.start_s}, window_s={sel.window_s}")
    first = out[0].at_s
    return [TraceRequest(r.at_s - first, r.input_tokens, r.output_tokens) for r in out]
