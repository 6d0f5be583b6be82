from __future__ import annotations

import pytest

from serving import cli
from tests.unit.conftest import ROOT


def test_config_check_ok_and_bad(tmp_path, capsys):
    assert cli.main(["config", "check", str(ROOT / "deploy" / "fleet.local.yaml")]) == 0
    assert "OK (2 models" in capsys.readouterr().out
    bad = tmp_path / "f.yaml"
    bad.write_text("models: []\nbogus: 1\n")
    assert cli.main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "f.yaml" in err and "bogus: unknown key" in err


def test_models_list(capsys):
    assert cli.main(["models", "list"]) == 0
    assert "qwen2.5-coder-0.5b-instruct" in capsys.readouterr().out


def test_passthrough_dispatch(monkeypatch):
    seen = {}

    class Fake:
        @staticmethod
        def main(argv):
            seen["argv"] = argv
            return 7

    import importlib

    monkeypatch.setattr(importlib, "import_module", lambda name: seen.setdefault("module", name) and Fake)
    assert cli.main(["router", "eval", "--policy", "x"]) == 7
    assert seen == {"module": "serving.router.eval", "argv": ["--policy", "x"]}
    seen.clear()
    assert cli.main(["simulate", "--scenario", "s.yaml"]) == 7
    assert seen == {"module": "autoscaler.cli", "argv": ["simulate", "--scenario", "s.yaml"]}


def test_router_without_subcommand(capsys):
    assert cli.main(["router"]) == 2
    assert "router train" in capsys.readouterr().err


def test_unknown_command_exits_2():
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
