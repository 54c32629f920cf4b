"""The server on Ray Serve (`qwen3tts_realtime.server.ray`): a local Ray cluster with two replicas of the tiny
Base model sharing a Redis voice store. A voice cloned through the app is spoken by both replicas; concurrent
streamed requests spread over them, each equal to the same request on one in-process model; a replica killed
mid-stream fails only its own stream, and later requests succeed."""

from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx
import numpy as np
import pytest

from qwen3tts_realtime import Qwen3TTS, VoiceLibrary
from qwen3tts_realtime.audio import to_pcm16
from qwen3tts_realtime.server import ServerConfig

from .conftest import GREEDY, reference_audio

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
from qwen3tts_realtime.server.ray import app_builder, deployment  # noqa: E402

REF_TEXT = "This is the reference voice."


@pytest.fixture(scope="module")
def cluster(golden, redis_server):
    """(base URL, Redis voice-store URL): two 0.5-CPU replicas on a local Ray cluster, stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    voices = f"{redis_server}?prefix=ray"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        config = ServerConfig(model=str(golden / "tiny" / "base"), voice_dir=voices, warmup_text="", max_streams=4,
                              max_queue=4)
        serve.run(deployment(config, num_replicas=2, num_cpus=0.5), name="qwen3tts", route_prefix="/")
        yield f"http://127.0.0.1:{port}", voices
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def anna(cluster, golden) -> str:
    """The voice "anna", cloned through the app (whichever replica takes the upload)."""
    base, _ = cluster
    wav = (golden / "inputs" / "ref_24k.wav").read_bytes()
    r = httpx.post(base + "/v1/voices", files={"file": ("ref.wav", wav, "audio/wav")},
                   data={"name": "anna", "ref_text": REF_TEXT}, timeout=120)
    assert r.status_code == 201, r.text
    return "anna"


def speech(base: str, **fields) -> httpx.Response:
    body = {"input": "Hello there.", "voice": "anna", "response_format": "pcm", "max_frames": 6, **GREEDY, **fields}
    return httpx.post(base + "/v1/audio/speech", json=body, timeout=120)


def same_audio(pcm: bytes, expected: np.ndarray) -> bool:
    """The same samples up to the decoder's float rounding (batched requests, and a replica's thread count,
    sum in another order): within 4 of 32768."""
    got = np.frombuffer(pcm, "<i2").astype(np.int32)
    return got.shape == expected.shape and int(np.abs(got - expected.astype(np.int32)).max()) <= 4


def test_a_clone_is_spoken_by_every_replica_as_by_one_model(cluster, anna, golden):
    base, voices = cluster

    local = Qwen3TTS.from_pretrained(golden / "tiny" / "base")
    expected = to_pcm16(reference_audio(local, "Hello there.", max_frames=6,
                                        profile=VoiceLibrary(local, voices).get("anna")))
    local.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: speech(base, stream=True), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    for r in responses:
        assert same_audio(r.content, expected)
    served = {r.headers["x-served-by"] for r in responses}
    for _ in range(20):  # the router picks replicas at random: ask until both have spoken the clone
        if len(served) == 2:
            break
        r = speech(base)
        assert r.status_code == 200 and same_audio(r.content, expected)
        served.add(r.headers["x-served-by"])
    assert len(served) == 2


def test_a_killed_replica_fails_only_its_own_stream(cluster, anna):
    base, _ = cluster
    with httpx.Client(timeout=120) as client:
        opened = {}
        for _ in range(20):  # one long stream on each replica
            request = client.build_request("POST", base + "/v1/audio/speech", json={
                "input": "A long sentence for a long stream.", "voice": "anna", "response_format": "pcm",
                "max_frames": 600, "stream": True})
            response = client.send(request, stream=True)
            replica = response.headers["x-served-by"]
            if replica in opened or response.status_code != 200:
                response.close()
            else:
                opened[replica] = response.iter_bytes()
                next(opened[replica])
            if len(opened) == 2:
                break
        assert len(opened) == 2
        doomed, survivor = opened
        [actor] = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                   if a["name"].startswith("SERVE_REPLICA::") and a["name"].endswith(doomed)]
        ray.kill(ray.get_actor(actor, namespace="serve"), no_restart=True)
        with pytest.raises(httpx.HTTPError):  # the chunked body breaks off: never a normal end
            for _ in opened[doomed]:
                pass
        received = sum(len(chunk) for chunk in opened[survivor])
        assert received > 0  # the other replica's stream went on to its end
    deadline, ok = time.monotonic() + 90, 0
    while ok < 3:  # later requests succeed (the controller replaces the replica meanwhile)
        assert time.monotonic() < deadline, "requests kept failing after the replica was killed"
        ok = ok + 1 if speech(base).status_code == 200 else 0
        time.sleep(0.2)


def test_serve_run_arguments_build_the_deployment(golden):
    app = app_builder({"model": str(golden / "tiny" / "base"), "max_streams": "3", "num_replicas": "2"})
    assert app is not None
    with pytest.raises(Exception, match="num_replicas"):
        app_builder({"num_replicas": "two"})


def test_the_example_builds_its_application(golden):
    import argparse
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "ray_serve.py"
    spec = importlib.util.spec_from_file_location("ray_serve_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    args = argparse.Namespace(model=str(golden / "tiny" / "base"), device="cpu", voice_dir=None, max_streams=4,
                              num_replicas=None, max_replicas=3, num_cpus=0.5, num_gpus=0.0)
    options = example.application(args)._bound_deployment._deployment_config
    assert options.max_ongoing_requests == 4 + ServerConfig().max_queue
    assert options.autoscaling_config.max_replicas == 3
    assert options.autoscaling_config.target_ongoing_requests == 3.0
