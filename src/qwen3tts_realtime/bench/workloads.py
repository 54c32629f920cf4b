"""The measurements of `qwen3tts-realtime bench`, each on a loaded `Qwen3TTS` with a warm voice.

Does: concurrent-stream waves (first audio, per-stream xRT, aggregate throughput; fixed text or text fed like
an LLM at a token rate), streaming vs offline wall time, barge-in latency, playout of the recorded production
traces through a `JitterBuffer`, memory over one long stream.
Does not: load models, write files or plot (see `runner` and `report`). Every request is greedy with a fixed
frame count (`min_new_frames` holds off the end of speech), so random-weight checkpoints speak exactly as long as
asked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from qwen3tts_realtime.audio import JitterBuffer, simulate_playout
from qwen3tts_realtime.bench.machine import peak_rss_bytes, rss_bytes
from qwen3tts_realtime.engine.sampling import SamplingParams
from qwen3tts_realtime.tts import Qwen3TTS
from qwen3tts_realtime.voices.profile import VoiceProfile

__all__ = [
    "TEXTS",
    "merge_waves",
    "StreamRecord",
    "barge_in",
    "bench_voice",
    "jitter_playout",
    "long_text",
    "memory_over_long_text",
    "percentile",
    "run_wave",
    "streaming_vs_offline",
]

TEXTS = (
    "Hello there, thanks for calling. How can I help you today?",
    "Your order number is four two seven, and it ships on Monday.",
    "Please hold while I transfer your call to a specialist.",
    "I can book that for you. What time works best tomorrow?",
)
GREEDY = SamplingParams(do_sample=False, subtalker_dosample=False, min_new_frames=1_000_000)
"""Greedy, and never ending before `max_new_frames`: random weights would end speech at arbitrary points."""
FRAME_S = 0.08


@dataclass
class StreamRecord:
    """One stream of a wave: chunk arrivals (seconds after the wave started, samples) and totals."""

    arrivals: list[tuple[float, int]] = field(default_factory=list)
    wall_s: float = 0.0
    sample_rate: int = 24000

    @property
    def first_audio_s(self) -> float:
        return self.arrivals[0][0]

    @property
    def audio_s(self) -> float:
        return sum(n for _, n in self.arrivals) / self.sample_rate

    @property
    def xrt(self) -> float:
        return self.audio_s / self.wall_s


def bench_voice(tts: Qwen3TTS) -> VoiceProfile:
    """A voice for any checkpoint type: its first speaker, a designed voice, or an x-vector clone of noise."""
    if tts.model_type == "custom_voice":
        return tts.speaker(tts.speakers[0])
    if tts.model_type == "voice_design":
        return tts.design_voice("A calm voice.")
    import numpy as np

    noise = 0.1 * np.random.default_rng(0).standard_normal(3 * 24000).astype("float32")
    return tts.clone_voice((noise, 24000), x_vector_only=True)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 1]."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_wave(
    tts: Qwen3TTS, voice: VoiceProfile, streams: int, frames: int, llm_rate: float | None = None
) -> tuple[dict[str, Any], list[StreamRecord]]:
    """`streams` requests opened together, each `frames` frames long, consumed by their own threads.

    With `llm_rate` (tokens per second) the text is pushed word by word at that rate into an incremental stream
    (about one LLM token per word), as a voice agent does; otherwise the whole text is given at open.
    """
    records = [StreamRecord(sample_rate=tts.sample_rate) for _ in range(streams)]
    barrier = threading.Barrier(streams + 1)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        text = TEXTS[i % len(TEXTS)]
        try:
            barrier.wait()
            t0 = time.perf_counter()
            if llm_rate is None:
                stream = tts.open_stream(text, voice=voice, sampling=GREEDY, non_streaming_layout=False,
                                         max_new_frames=frames)
            else:
                stream = tts.open_stream(voice=voice, sampling=GREEDY, max_new_frames=frames)
                threading.Thread(target=_feed_words, args=(stream, text, llm_rate), daemon=True).start()
            with stream:
                for chunk in stream:
                    records[i].arrivals.append((time.perf_counter() - t0, len(chunk.audio)))
            records[i].wall_s = time.perf_counter() - t0
        except BaseException as e:  # reported by the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(streams)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    first = [r.first_audio_s for r in records]
    summary = {
        "streams": streams,
        "first_audio_p50_s": percentile(first, 0.5),
        "first_audio_p95_s": percentile(first, 0.95),
        "per_stream_xrt_mean": sum(r.xrt for r in records) / streams,
        "per_stream_xrt_min": min(r.xrt for r in records),
        "aggregate_audio_s_per_s": sum(r.audio_s for r in records) / wall,
        "audio_s_per_stream": sum(r.audio_s for r in records) / streams,
        "wall_s": wall,
    }
    return summary, records


def merge_waves(per_repeat: list[tuple[dict[str, Any], list[StreamRecord]]]) -> dict[str, Any]:
    """One sweep point from its repeats: percentiles over every stream, means of the rates."""
    records = [r for _, rs in per_repeat for r in rs]
    first = [r.first_audio_s for r in records]
    summaries = [s for s, _ in per_repeat]
    return {
        "streams": summaries[0]["streams"],
        "first_audio_p50_s": percentile(first, 0.5),
        "first_audio_p95_s": percentile(first, 0.95),
        "per_stream_xrt_mean": sum(r.xrt for r in records) / len(records),
        "per_stream_xrt_min": min(r.xrt for r in records),
        "aggregate_audio_s_per_s": sum(s["aggregate_audio_s_per_s"] for s in summaries) / len(summaries),
        "audio_s_per_stream": summaries[0]["audio_s_per_stream"],
        "wall_s": sum(s["wall_s"] for s in summaries),
    }


def _feed_words(stream, text: str, rate: float) -> None:
    for k, word in enumerate(text.split(" ")):
        stream.push_text(word if k == 0 else " " + word)
        time.sleep(1.0 / rate)
    stream.end_input()


def streaming_vs_offline(tts: Qwen3TTS, voice: VoiceProfile, frames: int, pairs: int = 2) -> dict[str, Any]:
    """The same request offline (`generate`) and streamed, alternately `pairs` times, warm voice; the fastest
    of each is compared (on a shared machine the minimum is the least disturbed figure).

    Also splits the fastest stream's time by stage (engine stats) and reports how far its first chunk is from
    its floor: prompt + prefill + one frame's talker, code predictor and decoder time (negative: the first chunk
    leaves before the talker's next position is computed).
    """
    text = " ".join(TEXTS[:2])
    kwargs = dict(sampling=GREEDY, non_streaming_layout=False, max_new_frames=frames)
    offline_runs, stream_runs = [], []
    for _ in range(pairs):
        t = time.perf_counter()
        offline = tts.generate(text, voice=voice, **kwargs)
        offline_runs.append(time.perf_counter() - t)
        before = tts.stats()["time_s"]
        t = time.perf_counter()
        first_s, samples = None, 0
        with tts.open_stream(text, voice=voice, **kwargs) as stream:
            for chunk in stream:
                if first_s is None:
                    first_s = time.perf_counter() - t
                samples += len(chunk.audio)
        wall = time.perf_counter() - t
        after = tts.stats()["time_s"]
        stream_runs.append((wall, first_s, samples, {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}))
    stream_s, first_s, samples, spent = min(stream_runs, key=lambda r: r[0])
    offline_s = min(offline_runs)
    n = offline.codes.shape[0]
    per_frame = {k: spent.get(k, 0.0) / n for k in ("talker", "code_predictor", "decoder")}
    floor_s = spent.get("prompt", 0.0) + spent.get("prefill", 0.0) + sum(per_frame.values())
    return {
        "frames": n,
        "pairs": pairs,
        "first_audio_s": first_s,
        "prompt_s": spent.get("prompt", 0.0),
        "prefill_s": spent.get("prefill", 0.0),
        "per_frame_ms": {k: 1000 * v for k, v in per_frame.items()},
        "first_audio_over_floor_ms": 1000 * (first_s - floor_s),
        "stream_wall_s": stream_s,
        "offline_wall_s": offline_s,
        "streaming_over_offline": stream_s / offline_s,
        "stream_wall_s_all": [r[0] for r in stream_runs],
        "offline_wall_s_all": offline_runs,
        "stream_xrt": samples / tts.sample_rate / stream_s,
    }


def barge_in(tts: Qwen3TTS, voice: VoiceProfile, trials: int, background: int) -> dict[str, Any]:
    """Cancel a speaking stream after its second chunk, `trials` times, while `background` other streams speak.

    cancel to last chunk: from `cancel()` until the consumer's iteration ends (the listener hears nothing
    more); cancel to slot free: until the engine has dropped the stream (its memory and slot are free).
    """
    others = [tts.open_stream(TEXTS[i % len(TEXTS)], voice=voice, sampling=GREEDY, max_new_frames=400)
              for i in range(background)]
    drains = [threading.Thread(target=lambda s=s: [None for _ in s], daemon=True) for s in others]
    for d in drains:
        d.start()
    to_last, to_free, after_cancel = [], [], 0
    try:
        for k in range(trials):
            stream = tts.open_stream(TEXTS[k % len(TEXTS)], voice=voice, sampling=GREEDY, max_new_frames=200)
            second = threading.Event()
            ended: list[float] = []
            late: list[int] = []
            cancelled_at: list[float] = []

            def consume(stream=stream, second=second, ended=ended, late=late, cancelled_at=cancelled_at) -> None:
                for n, _ in enumerate(stream, 1):
                    if cancelled_at:
                        late.append(n)
                    if n == 2:
                        second.set()
                ended.append(time.perf_counter())

            consumer = threading.Thread(target=consume, daemon=True)
            consumer.start()
            second.wait()
            busy = _streams_in_engine(tts)
            t0 = time.perf_counter()
            cancelled_at.append(t0)
            stream.cancel()
            consumer.join()
            while _streams_in_engine(tts) >= busy:
                time.sleep(0.0005)
            to_free.append(time.perf_counter() - t0)
            to_last.append(ended[0] - t0)
            after_cancel += len(late)
    finally:
        for s in others:
            s.cancel()
        for d in drains:
            d.join()
    return {
        "trials": trials,
        "background_streams": background,
        "cancel_to_last_chunk_ms_p50": 1000 * percentile(to_last, 0.5),
        "cancel_to_last_chunk_ms_max": 1000 * max(to_last),
        "cancel_to_slot_free_ms_p50": 1000 * percentile(to_free, 0.5),
        "cancel_to_slot_free_ms_max": 1000 * max(to_free),
        "chunks_after_cancel": after_cancel,
    }


def _streams_in_engine(tts: Qwen3TTS) -> int:
    stats = tts.stats()
    return stats["active_streams"] + stats["queued_streams"]


def jitter_playout(records: list[StreamRecord], sample_rate: int, frame_ms: float = 20.0) -> dict[str, Any]:
    """Replay recorded streams (their real chunk arrival times) through an adaptive `JitterBuffer`, and through
    naive playback that starts at the first chunk, and count the gaps.

    Each stream is played twice through one buffer, as consecutive turns of a call: "cold" is the first turn
    (nothing learned yet: playout starts at the first frame), "warm" the second (the target learned from the
    first turn, as the Pipecat service keeps it across turns).
    """
    cold = {"underruns": 0, "underrun_ms": 0.0, "added_ms": []}
    warm = {"underruns": 0, "underrun_ms": 0.0, "added_ms": []}
    naive_underruns, naive_ms = 0, 0.0
    for record in records:
        buffer = JitterBuffer(sample_rate, frame_ms)
        first = simulate_playout(record.arrivals, buffer)
        buffer.reset()
        shift = first.last_call_s + 1.0
        second = simulate_playout([(t + shift, n) for t, n in record.arrivals], buffer)
        for tally, result in ((cold, first), (warm, second)):
            tally["underruns"] += result.underruns
            tally["underrun_ms"] += result.underrun_ms
            tally["added_ms"].append(result.added_latency_ms or 0.0)
        gaps, silent_s = _naive_gaps(record.arrivals, sample_rate)
        naive_underruns += gaps
        naive_ms += 1000 * silent_s
    return {
        "streams": len(records),
        "cold_underruns": cold["underruns"],
        "cold_underrun_ms": cold["underrun_ms"],
        "cold_added_latency_ms_max": max(cold["added_ms"]),
        "warm_underruns": warm["underruns"],
        "warm_underrun_ms": warm["underrun_ms"],
        "warm_added_latency_ms_max": max(warm["added_ms"]),
        "naive_underruns": naive_underruns,
        "naive_underrun_ms": naive_ms,
    }


def _naive_gaps(arrivals: list[tuple[float, int]], sample_rate: int) -> tuple[int, float]:
    """Gaps heard by a listener who plays each chunk as soon as it arrives (or when the previous one ends)."""
    gaps, silent_s, play_end = 0, 0.0, None
    for t, n in arrivals:
        if play_end is not None and t > play_end + 1e-9:
            gaps += 1
            silent_s += t - play_end
        play_end = (t if play_end is None else max(play_end, t)) + n / sample_rate
    return gaps, silent_s


def long_text(tts: Qwen3TTS, frames: int) -> str:
    """A text of at least `frames` tokens, so that in the streaming layout (one text token per frame) the text
    lasts the whole stream: random weights tend to end speech soon after the text runs out."""
    counts = [len(tts.tokenizer.encode(" " + t)) for t in TEXTS]
    sentences, tokens = [], 0
    while tokens < frames:
        k = len(sentences) % len(TEXTS)
        sentences.append(TEXTS[k])
        tokens += counts[k]
    return " ".join(sentences)


def memory_over_long_text(tts: Qwen3TTS, voice: VoiceProfile, seconds: float) -> dict[str, Any]:
    """One stream of `seconds` of speech; resident memory sampled about every second of audio.

    Growth is measured from the point 10% into the speech (after one-time allocations) to the end.
    """
    frames = max(2, round(seconds / FRAME_S))
    samples: list[tuple[float, int]] = [(0.0, rss_bytes())]
    audio = 0
    t = time.perf_counter()
    with tts.open_stream(long_text(tts, frames), voice=voice, sampling=GREEDY, max_new_frames=frames,
                         non_streaming_layout=False,
                         chunk_frames=(1, 2, 4, 8, 12)) as stream:
        for chunk in stream:
            audio += len(chunk.audio)
            if audio / tts.sample_rate - samples[-1][0] >= 1.0 or chunk.is_last:
                samples.append((audio / tts.sample_rate, rss_bytes()))
    wall = time.perf_counter() - t
    audio_s = audio / tts.sample_rate
    base = next(rss for at, rss in samples if at >= 0.1 * audio_s)
    base_at = next(at for at, rss in samples if at >= 0.1 * audio_s)
    growth = samples[-1][1] - base
    minutes = max(audio_s - base_at, 1e-9) / 60
    mib = 1024 * 1024
    return {
        "requested_audio_s": frames * FRAME_S,
        "audio_s": audio_s,
        "wall_s": wall,
        "xrt": audio_s / wall,
        "rss_start_mib": samples[0][1] / mib,
        "rss_end_mib": samples[-1][1] / mib,
        "rss_growth_mib": growth / mib,
        "rss_growth_mib_per_min": growth / mib / minutes,
        "peak_rss_mib": peak_rss_bytes() / mib,
        "rss_samples": [[round(at, 2), round(rss / mib, 1)] for at, rss in samples],
    }
