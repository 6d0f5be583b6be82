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
    assert seen == {"module": "serving.router.training.eval", "argv": ["--policy", "x"]}
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


def test_admin_port_in_use_is_a_clear_startup_error(monkeypatch):
    import socket

    import pytest

    from autoscaler import service
    from serving.fleet.schema import load_fleet
    from serving.runner import LocalStack, StartupError

    fleet = load_fleet(__import__("pathlib").Path(__file__).resolve().parents[2] / "deploy" / "fleet.local.yaml")

    class NoBoard:
        def __init__(self, *a, **k):
            pass

    monkeypatch.setattr(service, "serve_adapters", lambda fleet: (NoBoard(), None, None))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        stack = LocalStack(fleet, out=__import__("io").StringIO())
        with pytest.raises(StartupError, match="--admin-port"):
            stack.start_autoscaler(taken.getsockname()[1])
        assert stack.autoscaler is None
    finally:
        taken.close()
