"""Request traces: arrival time, input tokens, output tokens.

Accepted formats (chosen by `format`, or guessed from the extension):

- ``csv``: a header row, then one request per row. Columns, case-insensitive:
  a time column (``TIMESTAMP``, ``timestamp``, ``time``, ``arrival_time``,
  ``t``) holding seconds (float) or a date-time ``YYYY-MM-DD HH:MM:SS[.f]``;
  an input column (``ContextTokens``, ``input_tokens``, ``input_length``,
  ``prompt_tokens``); an output column (``GeneratedTokens``, ``output_tokens``,
  ``output_length``, ``completion_tokens``). The Azure LLM inference traces
  2023 are this format.
- ``jsonl``: one JSON object per line with ``timestamp`` (milliseconds, as in
  the Mooncake traces; set ``timestamp_unit: s`` for seconds),
  ``input_length`` and ``output_length``; other keys (``hash_ids``) are ignored.

Timestamps must be non-negative (seconds-valued ones) and sorted; token counts
non-negative integers. Any problem raises :class:`TraceError` naming the file and
line. Times are returned relative to the first request.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

TIME_COLS = ("timestamp", "time", "arrival_time", "t")
IN_COLS = ("contexttokens", "input_tokens", "input_length", "prompt_tokens")
OUT_COLS = ("generatedtokens", "output_tokens", "output_length", "completion_tokens")


class TraceError(ValueError):
    """A trace file is missing, empty, or malformed; the message names file and line."""


@dataclass(frozen=True)
class Trace:
    """Arrival times in seconds from the first request, token counts per request."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.arrival_s)

    def window(self, start_s: float, duration_s: float | None, time_scale: float) -> Trace:
        """Requests in [start, start+duration) of the original clock, re-based to 0 and
        compressed by `time_scale` (2.0 replays twice as fast)."""
        end = np.inf if duration_s is None else start_s + duration_s
        keep = (self.arrival_s >= start_s) & (self.arrival_s < end)
        t = (self.arrival_s[keep] - start_s) / time_scale
        return Trace(t, self.input_tokens[keep], self.output_tokens[keep], self.source)


def _col(header: list[str], names: tuple[str, ...], path: Path, what: str) -> int:
    low = [h.strip().lower() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    raise TraceError(f"{path}:1: no {what} column (expected one of {', '.join(names)}; got {', '.join(header)})")


def _parse_time(text: str, path: Path, line: int) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        if "." in text:  # Azure writes 7 fractional digits; datetime takes at most 6
            head, frac = text.split(".", 1)
            text = f"{head}.{frac[:6]}"
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise TraceError(f"{path}:{line}: timestamp '{text}' is neither seconds nor a date-time") from None


def _int(text: object, path: Path, line: int, what: str) -> int:
    try:
        v = int(float(text))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{line}: {what} '{text}' is not a number") from None
    if v < 0:
        raise TraceError(f"{path}:{line}: {what} is negative ({v})")
    return v


def _finish(rows: list[tuple[float, int, int, int]], path: Path, numeric: bool) -> Trace:
    if not rows:
        raise TraceError(f"{path}: the trace has no requests")
    prev = None
    for t, _i, _o, line in rows:
        if numeric and t < 0:
            raise TraceError(f"{path}:{line}: negative timestamp ({t})")
        if prev is not None and t < prev:
            raise TraceError(f"{path}:{line}: timestamps are not sorted ({t} after {prev})")
        prev = t
    arr = np.array([r[0] for r in rows], dtype=float)
    return Trace(
        arr - arr[0],
        np.array([r[1] for r in rows], dtype=float),
        np.array([r[2] for r in rows], dtype=float),
        str(path),
    )


def load_csv(path: Path) -> Trace:
    """Read a CSV trace (see module docstring). Raises TraceError."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise TraceError(f"{path}: empty file (expected a header row)")
        ti, ii, oi = (
            _col(header, TIME_COLS, path, "timestamp"),
            _col(header, IN_COLS, path, "input tokens"),
            _col(header, OUT_COLS, path, "output tokens"),
        )
        rows, numeric = [], True
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) <= max(ti, ii, oi):
                raise TraceError(f"{path}:{line}: expected {len(header)} columns, got {len(row)}")
            try:
                float(row[ti])
            except ValueError:
                numeric = False
            rows.append(
                (
                    _parse_time(row[ti], path, line),
                    _int(row[ii], path, line, "input tokens"),
                    _int(row[oi], path, line, "output tokens"),
                    line,
                )
            )
    return _finish(rows, path, numeric)


def load_jsonl(path: Path, unit: str = "ms") -> Trace:
    """Read a Mooncake-style JSONL trace (see module docstring). Raises TraceError."""
    div = 1000.0 if unit == "ms" else 1.0
    rows = []
    with path.open() as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise TraceError(f"{path}:{line}: not JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise TraceError(f"{path}:{line}: expected a JSON object")
            for key in ("timestamp", "input_length", "output_length"):
                if key not in obj:
                    raise TraceError(f"{path}:{line}: missing '{key}'")
            try:
                t = float(obj["timestamp"]) / div
            except (TypeError, ValueError):
                raise TraceError(f"{path}:{line}: timestamp '{obj['timestamp']}' is not a number") from None
            rows.append(
                (
                    t,
                    _int(obj["input_length"], path, line, "input_length"),
                    _int(obj["output_length"], path, line, "output_length"),
                    line,
                )
            )
    return _finish(rows, path, True)


def load_sim_trace(path: str | Path, fmt: str | None = None, timestamp_unit: str = "ms") -> Trace:
    """Load a trace by format (`csv` or `jsonl`; guessed from the suffix when None)."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: trace file not found")
    fmt = fmt or ("jsonl" if p.suffix in (".jsonl", ".json") else "csv")
    if fmt == "csv":
        return load_csv(p)
    if fmt == "jsonl":
        return load_jsonl(p, timestamp_unit)
    raise TraceError(f"{p}: unknown trace format '{fmt}' (csv or jsonl)")
