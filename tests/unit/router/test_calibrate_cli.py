"""`petit router calibrate` end to end over the gateway with fake engines (no Ray)."""

from __future__ import annotations

import json

import httpx
import yaml

from serving.fleet.schema import TelemetryConfig
from serving.gateway.gateway import Gateway
from serving.gateway.routes import build_fastapi
from serving.gateway.telemetry import RequestTelemetry
from serving.replica.engines.fake import FakeEngine
from serving.router.build import Router
from serving.router.policies import CheapestFitPolicy
from serving.router.training import calibrate
from tests.unit.conftest import fleet_dict
from tests.unit.fakes import FakeModelClient


class LetterEngine(FakeEngine):
    """Answers multiple-choice questions: right and sure on 'easy' ones (always, when `expert`), else wrong and unsure."""

    def __init__(self, model_id: str, expert: bool) -> None:
        super().__init__(model_id, 256)
        self.expert = expert

    async def generate(self, kind, body):
        out = await super().generate(kind, dict(body, max_tokens=1))
        easy = "easy" in body["messages"][-1]["content"]
        right = self.expert or easy
        choice = out["choices"][0]
        choice["message"]["content"] = "A" if right else "B"
        choice["logprobs"] = {"content": [{"token": "A", "logprob": -0.05 if (easy or self.expert) else -2.5}]}
        return out


def test_calibrate_records_fits_and_reports_on_held_out_questions(tmp_path, fleet):
    questions = tmp_path / "q.jsonl"
    lines = [
        {"question": f"{'easy' if i % 4 else 'hard'} question {i}?\nA. yes\nB. no\nAnswer with the letter only.",
         "answer": "A", "kind": "choice"}
        for i in range(40)
    ]  # fmt: skip
    questions.write_text("\n".join(json.dumps(x) for x in lines))
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(fleet_dict()))
    client = FakeModelClient({"small": LetterEngine("small", False), "large": LetterEngine("large", True)})
    app = build_fastapi(Gateway(fleet, client, Router.of(CheapestFitPolicy()), RequestTelemetry(TelemetryConfig())))
    out = tmp_path / "cal.json"
    rc = calibrate.main(
        ["--fleet", str(fleet_file), "--questions", str(questions), "--out-json", str(out),
         "--out-png", str(tmp_path / "cal.png"), "--target", "http://petit"],
        scorer=lambda texts: [0.9 if "hard" in t else 0.1 for t in texts],
        transport=httpx.ASGITransport(app=app),
    )  # fmt: skip
    assert rc == 0 and (tmp_path / "cal.png").stat().st_size > 0
    rep = json.loads(out.read_text())
    assert (rep["small"], rep["large"]) == ("small", "large")
    assert rep["calibration_n"] + rep["report_n"] == 40 and rep["report_n"] == 16
    held = rep["held_out"]
    assert 0.6 < held["small"]["accuracy"] < 0.9 and held["large"]["accuracy"] == 1.0
    # Both policies find the hard quarter: full accuracy with only the hard questions on the large model.
    for policy in ("cascade", "learned"):
        assert held[policy]["accuracy"] == 1.0
        assert held[policy]["large_share"] == 1 - held["small"]["accuracy"]
    assert held["cascade"]["calls_per_question"] > 1.0

    # Refit from the recorded answers (no fleet asked) and plot live results beside them.
    live = tmp_path / "live.json"
    live.write_text(json.dumps({"results": {"auto (cascade)": {"large_share": 0.25, "accuracy": 1.0}}}))
    again = tmp_path / "again.json"
    rc = calibrate.main(
        ["--fleet", str(fleet_file), "--questions", str(questions), "--out-json", str(again),
         "--out-png", str(tmp_path / "again.png"), "--from-json", str(out), "--live", str(live),
         "--target", "http://unreachable.invalid"],
    )  # fmt: skip
    assert rc == 0 and json.loads(again.read_text())["held_out"] == held
