"""What reproduces a run: the resolved inputs, the command, versions, commit and file hashes.

`collect()` is called once by the CLI before the run; the report writes the
result into report.json (`run.provenance`) and the HTML, and
`petit loadtest --rerun report.json` reads it back (`rerun_inputs`).
Reads files, git and package metadata; never imports vLLM or Locust (versions
come from installed package metadata, so nothing is initialised).
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEEDS_NOTE = "no random draws: synthetic prompts and trace order are deterministic (request number)"


def file_sha256(path: str | Path | None) -> str | None:
    """sha256 of a file's bytes; None if no path or unreadable."""
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError:
        return None


def versions() -> dict[str, str]:
    """Python, Petit, Locust and (if installed) vLLM, from package metadata; missing ones omitted."""
    out = {"python": platform.python_version()}
    for name in ("petit", "locust", "vllm"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_state(root: Path = ROOT) -> dict[str, Any]:
    """{commit, dirty} of the checkout this code runs from; empty if it is not a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": bool(status.strip())}


def collect(
    argv: list[str],
    scenario: dict[str, Any],
    sla: dict[str, Any],
    inputs: dict[str, str | None],
) -> dict[str, Any]:
    """The provenance record. `inputs`: the CLI options that name files or the target (target, fleet, ...)."""
    files = {"scenario": inputs.get("scenario"), "sla": inputs.get("sla"), "fleet": inputs.get("fleet")}
    files["prices"] = inputs.get("prices")
    files["fleet (scenario)"] = scenario.get("pricing", {}).get("fleet")
    files["prices (scenario)"] = scenario.get("pricing", {}).get("prices")
    files["prompts"] = scenario.get("prompts", {}).get("file")
    return {
        "command": ["petit", "loadtest", *argv],
        "inputs": inputs,
        "scenario": scenario,
        "sla": sla,
        "versions": versions(),
        "git": git_state(),
        "file_sha256": {k: file_sha256(v) for k, v in files.items() if v},
        "seeds": {"note": SEEDS_NOTE},
    }


def rerun_inputs(report_json: dict[str, Any]) -> dict[str, Any]:
    """The provenance of a report.json; raises ValueError if it has none."""
    prov = report_json.get("run", {}).get("provenance") or {}
    if not prov.get("scenario") or not prov.get("sla") or not prov.get("inputs"):
        raise ValueError("the report has no provenance (written by an older petit loadtest?)")
    return dict(prov)


def drift(prov: dict[str, Any]) -> list[str]:
    """What differs now from when the run was recorded (commit, file contents), in words."""
    out = []
    then, now = prov.get("git", {}).get("commit"), git_state().get("commit")
    if then and now and then != now:
        out.append(f"code: recorded at commit {then[:12]}, now {now[:12]}")
    for name, digest in prov.get("file_sha256", {}).items():
        path = prov.get("inputs", {}).get(name) or _scenario_file(prov, name)
        if path and file_sha256(path) != digest:
            out.append(f"{name} file {path} changed since the run")
    return out


def _scenario_file(prov: dict[str, Any], name: str) -> str | None:
    sc = prov.get("scenario", {})
    table = {
        "fleet (scenario)": sc.get("pricing", {}).get("fleet"),
        "prices (scenario)": sc.get("pricing", {}).get("prices"),
        "prompts": sc.get("prompts", {}).get("file"),
    }
    value = table.get(name)
    return str(value) if value else None
