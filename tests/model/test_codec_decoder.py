"""The codec decoder turns codes [B, T, 16] into 24 kHz audio [B, T·1920].

* `forward` is the official full decode: it reproduces the golden audio of the tiny checkpoint (float32, the
  golden tolerance 2e-4), and its state-dict keys are exactly the checkpoint's `decoder.*` keys.
* `decode_step` streams the same decode: any chunking of a stream (1 frame at a time, growing chunks, chunks
  of 3), batched rows that started at different times, rows swapped in and out of slots, and a state primed
  on reference codes all give the samples of the full decode (float64: 1e-6, float32: the golden tolerance).
* Bad codes raise `InvalidInputError` naming the accepted shape and range.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from qwen3tts_realtime.errors import InvalidInputError
from qwen3tts_realtime.model.codec_decoder import CodecDecoder, CodecDecoderState, validate_codes
from qwen3tts_realtime.model.config import SpeechTokenizerConfig, load_json
from tests.golden import golden_cases, load_golden_output

GOLDEN_ATOL = 2e-4  # float32 vs the official float32 output (golden README)
EXACT_ATOL = 1e-6  # our own equalities, proven in float64
SAMPLES_PER_FRAME = 1920
SCHEDULES = {"1": (1,), "1-2-4-8": (1, 2, 4, 8), "3": (3,)}  # chunk sizes; the last one repeats

REPO = Path(__file__).resolve().parents[2]
KEYS_TSV = REPO.parent / "shared" / "reference" / "checkpoint-keys" / "speech_tokenizer.keys.tsv"
FULL_CONFIG = REPO / "src" / "qwen3tts_realtime" / "configs" / "speech_tokenizer" / "config.json"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny decoder's steps are a few hundred small ops: a second intra-op thread gains nothing and, on a
    busy 2-core machine, its barrier waits made the frame-by-frame tests up to 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def decoder_config(folder: Path):
    return SpeechTokenizerConfig.from_dict(load_json(folder / "config.json")).decoder


@pytest.fixture(scope="module")
def load_decoder(golden: Path) -> Callable[[torch.dtype], CodecDecoder]:
    """The tiny Base checkpoint's decoder, loaded strictly from `speech_tokenizer/model.safetensors`."""
    folder = golden / "tiny" / "base" / "speech_tokenizer"
    weights = load_file(str(folder / "model.safetensors"))
    state = {k.removeprefix("decoder."): v for k, v in weights.items() if k.startswith("decoder.")}
    decoders: dict[torch.dtype, CodecDecoder] = {}

    def load(dtype: torch.dtype) -> CodecDecoder:
        if dtype not in decoders:
            decoder = CodecDecoder(decoder_config(folder))
            decoder.load_state_dict(state, strict=True)
            decoders[dtype] = decoder.to(dtype).eval()
        return decoders[dtype]

    return load


@pytest.fixture(scope="module")
def long_case(golden: Path) -> dict[str, torch.Tensor]:
    (case,) = [c for c in golden_cases("codec_decode") if c["name"] == "codec_decode_long"]
    return load_golden_output(case)


@pytest.fixture(scope="module")
def long_full64(load_decoder, long_case) -> torch.Tensor:
    """The float64 full decode of the 420 long-case frames, [1, 420·1920]."""
    return load_decoder(torch.float64)(long_case["codes"][None])


def chunks(schedule: tuple[int, ...]) -> Iterable[int]:
    return itertools.chain(schedule, itertools.repeat(schedule[-1]))


def stream(decoder: CodecDecoder, codes: torch.Tensor, schedule: tuple[int, ...], state=None) -> torch.Tensor:
    """Decode codes [B, T, 16] chunk by chunk through `decode_step`; the concatenated audio [B, T·1920]."""
    state = decoder.new_state(codes.shape[0]) if state is None else state
    out, start = [], 0
    for n in chunks(schedule):
        if start >= codes.shape[1]:
            break
        out.append(decoder.decode_step(codes[:, start : start + n], state))
        start += n
    return torch.cat(out, dim=-1)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a.double() - b.double()).abs().max().item()


def test_state_dict_keys_are_the_checkpoint_decoder_keys() -> None:
    """Keys and shapes of the real decoder (built on `meta`) against the published checkpoint's key list."""
    if not KEYS_TSV.exists():
        pytest.skip(f"checkpoint key list not found at {KEYS_TSV}")
    rows = [line.split("\t") for line in KEYS_TSV.read_text().splitlines() if line.startswith("decoder.")]
    expected = {name.removeprefix("decoder."): tuple(ast.literal_eval(shape)) for name, shape in rows}
    with torch.device("meta"):
        decoder = CodecDecoder(decoder_config(FULL_CONFIG.parent))
    assert {k: tuple(v.shape) for k, v in decoder.state_dict().items()} == expected


@pytest.mark.parametrize("case", golden_cases("codec_decode"), ids=lambda c: c["name"])
def test_full_decode_matches_official(load_decoder, case: dict) -> None:
    expected = load_golden_output(case)
    audio = load_decoder(torch.float32)(expected["codes"][None])
    assert audio.shape == (1, expected["codes"].shape[0] * SAMPLES_PER_FRAME)
    assert max_diff(audio[0], expected["audio"]) <= GOLDEN_ATOL


@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_streamed_equals_full_decode(load_decoder, long_case, long_full64, schedule: tuple[int, ...]) -> None:
    codes = long_case["codes"][None]  # 420 frames: past the 71-frame window and the official 300-frame chunk
    assert max_diff(stream(load_decoder(torch.float64), codes, schedule), long_full64) <= EXACT_ATOL
    streamed32 = stream(load_decoder(torch.float32), codes, schedule)
    assert max_diff(streamed32[0], long_case["audio"]) <= GOLDEN_ATOL


def test_batched_rows_at_different_offsets_equal_each_alone(load_decoder, long_case) -> None:
    decoder = load_decoder(torch.float64)
    codes_a, codes_b = long_case["codes"][None, :200], long_case["codes"][None, 200:]
    # Stream A decodes 90 frames alone (its window is full), then B joins with no history (mostly masked).
    state_a = decoder.new_state()
    head_a = stream(decoder, codes_a[:, :90], (8,), state_a)
    batch = CodecDecoderState.stack([state_a, decoder.new_state()])
    both = stream(decoder, torch.cat([codes_a[:, 90:150], codes_b[:, :60]]), (1, 2, 4, 8), batch)
    # A leaves the batch and goes on alone; B's state comes out as a copy of its row.
    state_a, state_b = batch.select(0), batch.select([1])
    tail_a = stream(decoder, codes_a[:, 150:], (5,), state_a)
    tail_b = stream(decoder, codes_b[:, 60:100], (3,), state_b)

    audio_a = torch.cat([head_a, both[:1], tail_a], dim=-1)
    audio_b = torch.cat([both[1:], tail_b], dim=-1)
    assert max_diff(audio_a, decoder(codes_a)) <= EXACT_ATOL
    assert max_diff(audio_b, decoder(codes_b[:, :100])) <= EXACT_ATOL
    assert batch.frames.tolist() == [150, 60] and state_a.frames.tolist() == [200]


def test_slot_reuse_with_put(load_decoder, long_case) -> None:
    """A fixed 2-slot batch: slot 1 runs stream B, then stream C (primed elsewhere) replaces it."""
    decoder = load_decoder(torch.float64)
    codes = long_case["codes"]
    codes_a, codes_b, codes_c = codes[None, :120], codes[None, 120:160], codes[None, 300:420]
    slots = decoder.new_state(2)
    first = stream(decoder, torch.cat([codes_a[:, :40], codes_b]), (4,), slots)
    state_c = decoder.new_state()
    head_c = stream(decoder, codes_c[:, :40], (16,), state_c)
    slots.put_(1, state_c)
    second = stream(decoder, torch.cat([codes_a[:, 40:], codes_c[:, 40:]]), (2, 6), slots)

    assert max_diff(torch.cat([first[:1], second[:1]], dim=-1), decoder(codes_a)) <= EXACT_ATOL
    assert max_diff(first[1:], decoder(codes_b)) <= EXACT_ATOL
    assert max_diff(torch.cat([head_c, second[1:]], dim=-1), decoder(codes_c)) <= EXACT_ATOL


def test_fixed_slots_decode_the_due_rows_in_place(load_decoder, long_case) -> None:
    """The engine's layout: one state of 4 slots; each call decodes only the rows that are due, in any order,
    and every stream's audio equals its whole decode. A reset slot serves a new stream from scratch."""
    decoder = load_decoder(torch.float64)
    codes = long_case["codes"]
    streams = {0: codes[None, :100], 2: codes[None, 100:180], 3: codes[None, 300:390]}
    slots, audio, done = decoder.new_state(4), {r: [] for r in streams}, dict.fromkeys(streams, 0)
    calls = [(3, 2, 0), (0, 3), (2, 0, 3), (0,), (3, 2), (2, 3, 0)] * 9  # rows due per call, in call order
    for i, due in enumerate(calls):
        n = 1 + i % 3
        due = [r for r in due if done[r] + n <= streams[r].shape[1]]
        if not due:
            continue
        rows = torch.tensor(due)
        batch = torch.cat([streams[r][:, done[r] : done[r] + n] for r in due])
        out = decoder.decode_step(batch, slots, rows=rows)
        for j, r in enumerate(due):
            audio[r].append(out[j : j + 1])
            done[r] += n
    for r, c in streams.items():
        assert max_diff(torch.cat(audio[r], dim=-1), decoder(c[:, : done[r]])) <= EXACT_ATOL
    assert slots.frames.tolist() == [done[0], 0, done[2], done[3]]
    assert done[0] > 71 and slots.kv[:, :, 1].abs().max() == 0  # past the window; the idle slot untouched

    slots.reset_(2)  # slot 2 takes a new stream
    fresh = decoder.decode_step(codes[None, 200:208], slots, rows=torch.tensor([2]))
    assert max_diff(fresh, decoder(codes[None, 200:208])) <= EXACT_ATOL


def test_decode_step_rejects_rows_other_than_the_codes(load_decoder) -> None:
    decoder = load_decoder(torch.float32)
    with pytest.raises(InvalidInputError, match="rows lists 2"):
        decoder.decode_step(torch.zeros(1, 1, 16, dtype=torch.long), decoder.new_state(4), rows=torch.tensor([0, 1]))


def test_primed_state_continues_the_reference(load_decoder, long_case, golden: Path) -> None:
    """ICL clones: decode the reference codes into the state, drop that audio, then stream the new codes."""
    decoder = load_decoder(torch.float64)
    (ref_case,) = [c for c in golden_cases("codec_decode") if c["name"] == "codec_decode_ref"]
    reference = load_golden_output(ref_case)["codes"][None]  # [1, 40, 16]
    generated = long_case["codes"][None, :100]
    primed = decoder.new_state()
    decoder.decode_step(reference, primed)
    warm = primed.clone()  # a cached voice: every stream starts from a copy
    audio = stream(decoder, generated, (1, 2, 4, 8), warm)
    whole = decoder(torch.cat([reference, generated], dim=1))
    assert max_diff(audio, whole[:, reference.shape[1] * SAMPLES_PER_FRAME :]) <= EXACT_ATOL
    assert primed.frames.tolist() == [40]  # the cached state was not advanced by the stream


def test_state_made_in_inference_mode_steps_outside_it(load_decoder, long_case) -> None:
    """The engine primes voices under `torch.inference_mode` and streams from clones outside it."""
    decoder = load_decoder(torch.float32)
    codes = long_case["codes"][None, :6]
    with torch.inference_mode():
        primed = decoder.new_state()
        decoder.decode_step(codes[:, :3], primed)
    slots = decoder.new_state(2)
    slots.put_(1, primed)
    audio = decoder.decode_step(codes[:, 3:].expand(2, -1, -1), slots)
    assert max_diff(decoder.decode_step(codes[:, 3:], primed.clone()), audio[1:]) <= GOLDEN_ATOL


def test_decode_step_rejects_a_state_of_another_dtype(load_decoder) -> None:
    state = load_decoder(torch.float64).new_state()
    with pytest.raises(InvalidInputError, match="new_state"):
        load_decoder(torch.float32).decode_step(torch.zeros(1, 1, 16, dtype=torch.long), state)


def test_forward_accepts_unbatched_codes(load_decoder, long_case) -> None:
    decoder = load_decoder(torch.float32)
    codes = long_case["codes"][:5]
    assert torch.equal(decoder(codes), decoder(codes[None]))


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (torch.zeros(16, dtype=torch.long), "shape [16]"),
        (torch.zeros(1, 2, 3, 16, dtype=torch.long), "shape [1, 2, 3, 16]"),
        (torch.zeros(4, 15, dtype=torch.long), "shape [4, 15]"),
        (torch.zeros(1, 0, 16, dtype=torch.long), "no frames"),
        (torch.full((4, 16), 2048), "code id 2048 is out of range"),
        (torch.full((4, 16), -1), "code id -1 is out of range"),
        (torch.zeros(4, 16), "dtype torch.float32"),
        (torch.zeros(4, 16, dtype=torch.bool), "dtype torch.bool"),
        ("codes", "type str"),
    ],
)
def test_bad_codes_name_the_accepted_input(codes, message: str) -> None:
    with pytest.raises(InvalidInputError, match="expected \\[T, 16\\] or \\[B, T, 16\\]") as info:
        validate_codes(codes)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_validate_codes_returns_batched_int64() -> None:
    codes = validate_codes(torch.arange(32, dtype=torch.int32).view(2, 16))
    assert codes.dtype == torch.long and codes.shape == (1, 2, 16)
    assert validate_codes([[7] * 16]).tolist() == [[[7] * 16]]


def test_decode_step_rejects_a_batch_other_than_the_state(load_decoder) -> None:
    decoder = load_decoder(torch.float32)
    with pytest.raises(InvalidInputError, match="state holds 2"):
        decoder.decode_step(torch.zeros(1, 1, 16, dtype=torch.long), decoder.new_state(2))
