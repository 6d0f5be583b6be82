"""The fake OpenAI server as a fixture for the live (subprocess) load-test tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.loadtests.test_live import ITL, ROOT, TTFT, _port


@pytest.fixture
def fake(request):
    """Start loadtests.fake_server with the test's args; yields its URL."""
    args = getattr(request, "param", [])
    port = _port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadtests.fake_server",
            "--port",
            str(port),
            "--ttft",
            str(TTFT),
            "--itl",
            str(ITL),
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().startswith("READY"), "fake server did not start"
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
