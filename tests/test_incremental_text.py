"""Text fed in fragments (as an LLM produces it) speaks exactly like the whole text in the streaming layout.

Stable commitment: committed ids are always a prefix of the whole text's ids and equal them after the end,
whatever the split (mid-word, inside CJK runs and emoji sequences, before combining marks, inside whitespace).
"""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen3tts_realtime import InvalidInputError, Qwen3TTS, SamplingParams
from qwen3tts_realtime.text.incremental import IncrementalTokenizer

SAMPLES = [
    "Sure, I can help with that.",
    "Your order number is four two seven, and it ships on Monday.",
    "你好，欢迎致电。我们明天见！",
    "Café au lait — naïve re\u0301sume\u0301 👍🏽👨‍👩‍👧 ok?!\n\nNext  line\twith   spaces.",
    "It's 3:45pm; don't you think?? ...yes!!!\r\n",
]


@pytest.fixture(scope="module")
def tts(golden):
    model = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice", dtype="float64")
    yield model
    model.close()


def split_points(draw_data, text):
    return sorted(draw_data.draw(st.sets(st.integers(0, len(text)), max_size=12)))


ADDED_TOKEN_TEXT = ["<|im_end|>", "<|im_start|>", "<think>", "</think>", "<tts_text_bos>", "<tts_text_bos_single>",
                    "<|im_", "<tts_text_bos", "<", "|>", "Hello", " there", "\n\n", " ", "你好", "!"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), text=st.sampled_from(SAMPLES) | st.text(min_size=1, max_size=40))
def test_stable_commitment_equals_whole_tokenization(tts, data, text):
    assert_commits_whole_tokenization(tts, text, split_points(data, text))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), parts=st.lists(st.sampled_from(ADDED_TOKEN_TEXT), min_size=1, max_size=8))
def test_special_tokens_in_user_text_are_plain_text(tts, data, parts):
    """`<|im_end|>` typed by a user (or an LLM) is text: it can never close the prompt's template."""
    text = "".join(parts)
    control_ids = set(tts.tokenizer.hf_tokenizer.added_tokens_decoder)

    assert not control_ids & set(tts.tokenizer.encode(text))
    template = tts.tokenizer.assistant_ids("Hi " + text).tolist()
    assert [i for i in template if i in control_ids] == [151644, 151645, 151644]  # the template's own, by id
    assert_commits_whole_tokenization(tts, text, split_points(data, text))


def assert_commits_whole_tokenization(tts, text, cuts):
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    whole = tts.tokenizer.encode(text)

    inc = IncrementalTokenizer(tts.tokenizer.backend)
    committed: list[int] = []
    for piece in pieces:
        committed += inc.push(piece)
        assert committed == whole[: len(committed)]
    committed += inc.end()

    assert committed == whole


def speak_in_pieces(tts, voice, pieces, **kwargs):
    stream = tts.open_stream(voice=voice, language="English", sampling=SamplingParams.greedy(), **kwargs)
    for piece in pieces:
        stream.push_text(piece)
        time.sleep(0.002)  # let the engine interleave: some pieces arrive after generation started
    stream.end_input()
    return torch.cat([c.codes for c in stream])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), text=st.sampled_from(SAMPLES[:3]))
def test_fragments_give_the_codes_of_the_whole_text(tts, data, text):
    voice = tts.speaker("ryan")
    cuts = split_points(data, text)
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    whole = tts.generate(
        text,
        voice=voice,
        language="English",
        sampling=SamplingParams.greedy(),
        non_streaming_layout=False,
        max_new_frames=40,
    )

    codes = speak_in_pieces(tts, voice, pieces, max_new_frames=40)

    assert torch.equal(codes, whole.codes)


@pytest.mark.parametrize("backend", ["auto", "onednn"])
def test_fragments_give_the_codes_of_the_whole_text_in_float32(golden_models, backend):
    """The default dtype too: codes exact with the larger layers packed ("auto") or every layer ("onednn"),
    fragments cut mid-word and pushed while generation runs."""
    model = golden_models("custom_voice", "float32", linear_backend=backend)
    voice = model.speaker("ryan")
    for text in SAMPLES[:3]:
        cuts = sorted({1, len(text) // 3, len(text) // 2, len(text) - 2})
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        whole = model.generate(text, voice=voice, language="English", sampling=SamplingParams.greedy(),
                               non_streaming_layout=False, max_new_frames=40)
        assert torch.equal(speak_in_pieces(model, voice, pieces, max_new_frames=40), whole.codes)


def test_generation_waits_for_text_instead_of_ending(tts):
    """Text that pauses mid-utterance pauses the audio; it does not end the speech with padding."""
    voice = tts.speaker("ryan")
    text = "Your order number is four two seven, and it ships on Monday."
    whole = tts.generate(
        text, voice=voice, language="English", sampling=SamplingParams.greedy(), non_streaming_layout=False
    )
    stream = tts.open_stream(voice=voice, language="English", sampling=SamplingParams.greedy())
    stream.push_text("Your order number is")
    chunks = [next(stream)]
    time.sleep(0.3)  # the model has consumed the first words and waits here
    stream.push_text(" four two seven, and it ships on Monday.")
    stream.end_input()
    chunks += list(stream)
    assert torch.equal(torch.cat([c.codes for c in chunks]), whole.codes)


def test_incremental_icl_clone_waits_for_the_reference_overlay(golden):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "base", dtype="float64")
    voice = tts.clone_voice(str(golden / "inputs" / "ref_24k.wav"), ref_text="This is the reference voice.")
    text = "Hello there, how can I help you today? I hope the weather is fine where you are."
    whole = tts.generate(text, voice=voice, language="English", sampling=SamplingParams.greedy(), max_new_frames=30)
    pieces = [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]
    codes = speak_in_pieces(tts, voice, pieces, max_new_frames=30)
    assert torch.equal(codes, whole.codes)
    tts.close()


def test_incremental_misuse(tts):
    voice = tts.speaker("ryan")
    with pytest.raises(InvalidInputError, match="streaming layout"):
        tts.open_stream(voice=voice, non_streaming_layout=True)
    stream = tts.open_stream(voice=voice)
    stream.end_input()
    with pytest.raises(InvalidInputError, match="without any text"):
        list(stream)
    done = tts.open_stream(voice=voice)
    done.end_input()
    with pytest.raises(InvalidInputError, match="after end_input"):
        done.push_text("more")
    done.close()
    whole = tts.open_stream(voice=voice, text="Hi.")
    with pytest.raises(RuntimeError, match="whole text"):
        whole.push_text("more")
    whole.close()


def test_many_tiny_pushes_cost_what_the_text_does_and_never_stall_another_stream(golden):
    """4,096 one-character pushes: the tokenizer reads each character a few times, not the whole text again per
    push, and it does so off the engine thread, so a stream running beside them gets exactly its own audio."""
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    voice = tts.speaker("ryan")
    other_request = dict(text="Please hold while I transfer your call.", voice=voice, language="English",
                         sampling=SamplingParams.greedy(), max_new_frames=20)
    other_alone = tts.generate(**other_request)
    text = ("All right, let me check that order for you. " * 100)[:4096]

    other = tts.open_stream(**other_request)
    pushed = tts.open_stream(voice=voice, language="English", sampling=SamplingParams.greedy(), max_new_frames=20)
    for ch in text:
        pushed.push_text(ch)
    pushed.end_input()
    other_codes = torch.cat([c.codes for c in other])
    assert sum(c.num_frames for c in pushed) == 20

    assert torch.equal(other_codes, other_alone.codes)
    tokenized = tts.stats()["tokenized_chars"]
    assert len(text) <= tokenized <= 4 * len(text)  # re-tokenizing the whole text per push would be ~8.4 million
    tts.close()
