"""Trace files: both formats, selection and time scaling, and errors naming file and line."""

from __future__ import annotations

import pytest

from loadtests.config_files import LoadTestInputError
from loadtests.traces import TraceRequest, TraceSelection, default_trace_dir, load_trace

AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:15:46.0000000,374,44\n2023-11-16 18:15:48.5000000,396,109\n2023-11-16 18:15:50.0,10,3\n"
)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_azure_csv_relative_times_and_scale(tmp_path):
    p = _write(tmp_path, "a.csv", AZURE)
    reqs = load_trace(p, "azure", TraceSelection(time_scale=0.5, max_output_tokens=50))
    assert reqs == [TraceRequest(0.0, 374, 44), TraceRequest(1.25, 396, 50), TraceRequest(2.0, 10, 3)]


def test_mooncake_jsonl_ms_window_and_clip(tmp_path):
    lines = [
        f'{{"timestamp": {t}, "input_length": {n}, "output_length": 5, "hash_ids": [1]}}'
        for t, n in ((0, 9000), (1000, 20), (3000, 30), (9000, 40))
    ]
    p = _write(tmp_path, "m.jsonl", "\n".join(lines))
    reqs = load_trace(p, "mooncake", TraceSelection(start_s=1, window_s=5, max_input_tokens=25))
    assert reqs == [TraceRequest(0.0, 20, 5), TraceRequest(2.0, 25, 5)]


@pytest.mark.parametrize(
    "name, fmt, text, expect",
    [
        ("e.csv", "azure", "", "the trace file is empty"),
        ("h.csv", "azure", "TIMESTAMP,ContextTokens\n1,2\n", ":1: missing column(s) GeneratedTokens"),
        ("u.csv", "azure", "TIMESTAMP,ContextTokens,GeneratedTokens\n5,1,1\n3,1,1\n", ":3: timestamps are not sorted"),
        ("n.csv", "azure", "TIMESTAMP,ContextTokens,GeneratedTokens\n-1,1,1\n", ":2: negative timestamp"),
        ("b.csv", "azure", "TIMESTAMP,ContextTokens,GeneratedTokens\n1,x,1\n", ":2: bad row"),
        ("c.csv", "azure", "TIMESTAMP,ContextTokens,GeneratedTokens\n", "the trace has no requests"),
        ("m.jsonl", "mooncake", '{"timestamp": 0, "input_length": 1}\n', ":1: missing field(s) output_length"),
        ("j.jsonl", "mooncake", '{"timestamp": 0, "input_length": 1, "output_length": 1}\nnot json\n', ":2:"),
        (
            "k.jsonl",
            "mooncake",
            '{"timestamp": 0, "input_length": -4, "output_length": 1}\n',
            "input_length must be >= 0",
        ),
    ],
)
def test_bad_traces_name_file_and_line(tmp_path, name, fmt, text, expect):
    p = _write(tmp_path, name, text)
    with pytest.raises(LoadTestInputError) as e:
        load_trace(p, fmt)
    assert str(p) in str(e.value) and expect in str(e.value)


def test_missing_trace_file(tmp_path):
    with pytest.raises(LoadTestInputError, match="trace file not found"):
        load_trace("nope.csv", "azure", trace_dir=tmp_path)


def _shared(rel: str):
    p = default_trace_dir() / rel
    if not p.exists():
        pytest.skip(
            f"trace data not found at {p}: set PETIT_TRACE_DIR or check out ../shared (see "
            "/work/shared/README.md); the data is third-party and never copied into the repository"
        )
    return rel


def test_real_azure_conv_trace():
    reqs = load_trace(_shared("azure_llm_2023/AzureLLMInferenceTrace_conv.csv"), "azure", TraceSelection(window_s=60))
    assert 100 < len(reqs) < 600 and reqs[0].at_s == 0.0 and reqs[-1].at_s <= 60
    assert all(a.at_s <= b.at_s for a, b in zip(reqs, reqs[1:]))


def test_real_mooncake_trace():
    reqs = load_trace(_shared("mooncake_synthetic/synthetic_trace.jsonl"), "mooncake", TraceSelection(max_requests=50))
    assert len(reqs) == 50 and reqs[0].input_tokens == 40160
