"""The talker prompt for every layout of spec §4: prefill rows, the trailing text fed one row per frame, and
how many leading rows depend only on the voice (the part a warm voice can cache, spec §4.5).

Layouts (`non_streaming=False` is the dual-track "streaming text" layout):
- non-ICL streaming: [instruct] role, control(+speaker), tts_bos+C(pad), P(t1)+C(bos) | trailing t2..tN, eos
- non-ICL non-streaming: ... tts_bos+C(pad), P(t1..tN, eos)+C(pad), P(pad)+C(bos) | trailing pad
- ICL streaming: text track [r, t, eos] one row ahead of codec track [C(bos), F(ref frames)] | the text rest
- ICL non-streaming: [r, t, eos]+C(pad), then P(pad)+[C(bos), F(ref frames)] | trailing pad
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import Qwen3TTSConfig
from .talker import Talker

__all__ = ["Prompt", "PromptVoice", "build_prompt"]

ROLE_LEN = 3  # "<|im_start|>assistant\n"
TAIL_LEN = 5  # "<|im_end|>\n<|im_start|>assistant\n"
REF_TAIL_LEN = 2  # "<|im_end|>\n"


@dataclass(frozen=True)
class PromptVoice:
    """What the prompt needs from a voice, already resolved to ids and tensors."""

    speaker_row: Tensor | None = None  # [D]: C(spk_id) for CustomVoice, the x-vector for Base clones
    instruct_ids: Tensor | None = None  # [I] whole "<|im_start|>user\n...<|im_end|>\n" ids
    ref_ids: Tensor | None = None  # [R+5] "<|im_start|>assistant\n{ref}<|im_end|>\n" ids (ICL only)
    ref_codes: Tensor | None = None  # [M, 16] reference frames (ICL only)


@dataclass(frozen=True)
class Prompt:
    rows: Tensor  # [L, D] prefill rows
    trailing: Tensor  # [K, D] added to generated frames 0..K-1
    pad_row: Tensor  # [D] P(tts_pad), added to frames from K on
    voice_prefix_len: int  # leading rows of `rows` that depend only on (voice, language, instruct)


def build_prompt(
    talker: Talker,
    config: Qwen3TTSConfig,
    text_ids: Tensor,
    voice: PromptVoice,
    language_id: int | None,
    non_streaming: bool,
) -> Prompt:
    """Build the prefill and trailing rows for one request.

    Args:
        text_ids: the tokenized "<|im_start|>assistant\\n{text}<|im_end|>\\n<|im_start|>assistant\\n" [N+8].
        voice: speaker row, instruct ids, and for ICL clones reference ids and codes.
        language_id: codec language id (dialect already applied), None for "auto".
        non_streaming: the official `non_streaming_mode` switch.
    """
    tc = config.talker
    dev = text_ids.device

    def ids(*values: int) -> Tensor:
        return torch.tensor(values, dtype=torch.long, device=dev)

    bos_row, eos_row, pad_row = talker.text_rows(
        ids(config.tts_bos_token_id, config.tts_eos_token_id, config.tts_pad_token_id)
    ).unbind(0)

    if language_id is None:
        control = [tc.codec_nothink_id, tc.codec_think_bos_id, tc.codec_think_eos_id]
    else:
        control = [tc.codec_think_id, tc.codec_think_bos_id, language_id, tc.codec_think_eos_id]
    codec_col = [talker.codec_rows(ids(*control))]
    if voice.speaker_row is not None:
        codec_col.append(voice.speaker_row.to(pad_row.dtype).view(1, -1))
    codec_col.append(talker.codec_rows(ids(tc.codec_pad_id, tc.codec_bos_id)))
    codec = torch.cat(codec_col)  # K = [ctrl..., (spk), pad, bos]

    head: list[Tensor] = []
    if voice.instruct_ids is not None:
        head.append(talker.text_rows(voice.instruct_ids))
    head.append(talker.text_rows(text_ids[:ROLE_LEN]))
    text_col = torch.cat([pad_row.expand(codec.shape[0] - 2, -1), bos_row.view(1, -1)])
    head.append(text_col + codec[:-1])
    prefix = torch.cat(head)
    codec_bos = codec[-1:]

    target = text_ids[ROLE_LEN:-TAIL_LEN]
    if voice.ref_codes is not None:
        if voice.ref_ids is None:
            raise ValueError("an ICL prompt needs ref_ids with ref_codes")
        ref = voice.ref_ids[ROLE_LEN:-REF_TAIL_LEN]
        text_track = torch.cat([talker.text_rows(torch.cat([ref, target])), eos_row.view(1, -1)])
        codec_track = torch.cat([codec_bos, talker.frame_rows(voice.ref_codes)])
        if non_streaming:
            pad_codec = talker.codec_rows(ids(tc.codec_pad_id)).expand(text_track.shape[0], -1)
            body = torch.cat([text_track + pad_codec, codec_track + pad_row])
            trailing = pad_row.view(1, -1)
        elif text_track.shape[0] > codec_track.shape[0]:
            n = codec_track.shape[0]
            body, trailing = text_track[:n] + codec_track, text_track[n:]
        else:
            missing = codec_track.shape[0] - text_track.shape[0]
            body = torch.cat([text_track, pad_row.expand(missing, -1)]) + codec_track
            trailing = pad_row.view(1, -1)
        voice_prefix_len = prefix.shape[0]
    else:
        first = talker.text_rows(target[:1]) + codec_bos
        if non_streaming:
            pad_codec = talker.codec_rows(ids(tc.codec_pad_id)).expand(target.shape[0] + 1, -1)
            text_rows = torch.cat([talker.text_rows(target), eos_row.view(1, -1)])
            body = torch.cat([text_rows + pad_codec, pad_row.view(1, -1) + codec_bos])
            trailing = pad_row.view(1, -1)
        else:
            body = first
            trailing = torch.cat([talker.text_rows(target[1:]), eos_row.view(1, -1)])
        voice_prefix_len = prefix.shape[0]
    return Prompt(
        rows=torch.cat([prefix, body]), trailing=trailing, pad_row=pad_row, voice_prefix_len=voice_prefix_len
    )
