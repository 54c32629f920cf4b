"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.golden import GOLDEN

ON_CI = os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped test (a missing extra, server, golden file or codec) is a failure: CI must run all."""
    outcome = yield
    report = outcome.get_result()
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {report.longrepr}"


def pytest_collectreport(report):
    if ON_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"a module skipped under CI=true, which must run every test: {report.longrepr}"


@pytest.fixture(scope="session", autouse=True)
def _kernel_choices_outside_the_user_cache(tmp_path_factory):
    """`quantize` loads measure their kernel once per machine and remember it, and build our native kernels once;
    tests keep both to themselves."""
    mp = pytest.MonkeyPatch()
    mp.setenv("QWEN3TTS_KERNEL_CACHE", str(tmp_path_factory.mktemp("kernels") / "kernels.json"))
    mp.setenv("QWEN3TTS_NATIVE_CACHE", str(tmp_path_factory.mktemp("native")))  # our kernels, built once per run
    yield
    mp.undo()


@pytest.fixture(scope="session")
def golden() -> Path:
    """The golden bundle folder; tests that need it skip when it is absent."""
    if not (GOLDEN / "cases.json").exists():
        pytest.skip(f"golden bundle not found at {GOLDEN}")
    return GOLDEN


@pytest.fixture(scope="module")
def golden_models(golden: Path):
    """`get(kind, dtype="float32", **options)`: the golden tiny checkpoint of that kind, loaded once per test module
    with those `from_pretrained` options (e.g. `quantize="fp16"`, `linear_backend="onednn"`)."""
    from qwen3tts_realtime import Qwen3TTS

    loaded: dict[tuple, Qwen3TTS] = {}

    def get(kind: str, dtype: str = "float32", **options) -> Qwen3TTS:
        key = (kind, dtype, *sorted(options.items()))
        if key not in loaded:
            loaded[key] = Qwen3TTS.from_pretrained(golden / "tiny" / kind, dtype=dtype, **options)
        return loaded[key]

    yield get
    for tts in loaded.values():
        tts.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> str:
    """A real `redis-server` (Debian's package; `.ci/run` installs it) on a free localhost port, without
    persistence; its URL. Tests namespace their keys with `redis_url`."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str, request) -> str:
    """A Redis voice-store URL whose keys belong to this test alone (a prefix of its own)."""
    import hashlib

    return f"{redis_server}?prefix=t{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]}"
