"""Requests: validation, the frame budget, long-text segmentation and prompt building, over a `Runtime`.

`Runtime` is what the engine needs of a loaded model and no more: config, talker, codec, text tokenizer,
generation defaults, device and dtype. `Requests` turns a call's arguments into validated `RequestSpec`s
(cheap, no model work: safe on an event loop) and a spec into its prompt rows and generation row (the
embeddings: engine thread or offline caller). `Qwen3TTS` owns one and hands its `Runtime` to the `Engine`; the
engine never sees `Qwen3TTS`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..model.codec import SpeechCodec
from ..model.config import GenerationDefaults, Qwen3TTSConfig
from ..model.prompt import REF_TAIL_LEN, ROLE_LEN, TAIL_LEN, Prompt, PromptVoice, build_prompt
from ..model.talker import Talker
from ..model.text_tokenizer import TextTokenizer
from ..text.languages import language_name
from ..text.segment import group_segments
from ..voices.profile import VoiceProfile
from .generation import RowRequest, generate_frames
from .sampling import SamplingParams

__all__ = ["Runtime", "Requests", "RequestSpec", "FRAMES_PER_TEXT_TOKEN", "MIN_DEFAULT_FRAMES"]

FRAMES_PER_TEXT_TOKEN = 10  # generous: real speech runs at about 3 frames (0.24 s) per Qwen2 text token
MIN_DEFAULT_FRAMES = 50  # 4 s: covers short texts, and the golden cases' 47 frames


@dataclass(frozen=True)
class Runtime:
    """The loaded model parts a request and the engine use."""

    config: Qwen3TTSConfig
    talker: Talker
    codec: SpeechCodec
    tokenizer: TextTokenizer
    generation_defaults: GenerationDefaults
    device: torch.device
    dtype: torch.dtype

    @property
    def model_type(self) -> str:
        return self.config.model_type

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate


@dataclass(frozen=True)
class RequestSpec:
    """A validated request: everything but the model's work."""

    voice: VoiceProfile
    text_ids: Tensor | None  # the tokenized target-text template; None for incremental text
    language_id: int | None
    non_streaming_layout: bool
    params: SamplingParams
    max_frames: int
    seed: int | None
    max_frames_auto: bool = False  # max_frames derived from the text (grows with incremental text)


class Requests:
    """Validation and prompt building for one `Runtime`."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._offline = {"generations": 0, "frames": 0}  # offline work, done in callers' threads
        self._offline_lock = threading.Lock()

    # ---- validation (no model work) ---------------------------------------------------------------------

    def specs(
        self,
        text: str | None,
        voice: VoiceProfile,
        language: str = "Auto",
        *,
        sampling: SamplingParams | None = None,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> list[RequestSpec]:
        """The consecutive generations of a request: one, or a long complete text split at sentences
        (`segment_text`) when it exceeds one generation's budget and `max_new_frames` is not given. `text=None` is
        an incremental request (text pushed later; streaming layout)."""
        texts = [text] if text is None or max_new_frames is not None else self.segment_text(text)
        return [self.spec(t, voice, language, sampling=sampling, non_streaming_layout=non_streaming_layout,
                          max_new_frames=max_new_frames, seed=seed) for t in texts]

    def spec(
        self,
        text: str | None,
        voice: VoiceProfile,
        language: str = "Auto",
        *,
        sampling: SamplingParams | None = None,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> RequestSpec:
        """One validated generation (see `specs`)."""
        rt = self.runtime
        voice = self.check_voice(voice)
        text_ids = None if text is None else rt.tokenizer.assistant_ids(text)
        language_id = self.language_id(language, voice)
        if text is None:
            if non_streaming_layout:
                raise InvalidInputError(
                    "incremental text (open_stream without text) always uses the streaming layout; "
                    "pass non_streaming_layout=None/False, or give the whole text"
                )
            non_streaming_layout = False
        elif non_streaming_layout is None:
            non_streaming_layout = voice.kind in ("speaker", "design")
        params = (sampling or SamplingParams()).resolve(rt.generation_defaults)
        auto = max_new_frames is None
        if auto:
            max_new_frames = self.frame_budget(0 if text_ids is None else len(text_ids) - ROLE_LEN - TAIL_LEN)
        elif isinstance(max_new_frames, bool) or int(max_new_frames) != max_new_frames or max_new_frames < 1:
            raise InvalidInputError(f"max_new_frames={max_new_frames!r}; it must be a positive int or None")
        if seed is not None and (isinstance(seed, bool) or int(seed) != seed):
            raise InvalidInputError(f"seed={seed!r}; it must be an int or None")
        return RequestSpec(
            voice=voice,
            text_ids=text_ids,
            language_id=language_id,
            non_streaming_layout=bool(non_streaming_layout),
            params=params,
            max_frames=int(max_new_frames),
            seed=None if seed is None else int(seed),
            max_frames_auto=auto,
        )

    def incremental(self, spec: RequestSpec, ids: list[int]) -> RequestSpec:
        """An incremental request as if its committed text `ids` were the whole text (streaming layout)."""
        if not ids:
            raise InvalidInputError("the stream's input ended without any text: send some text before ending it")
        tok = self.runtime.tokenizer
        template = torch.tensor([*tok.role_ids, *ids, *tok.end_ids], dtype=torch.long)
        max_frames = self.frame_budget(len(ids)) if spec.max_frames_auto else spec.max_frames
        return RequestSpec(spec.voice, template, spec.language_id, False, spec.params, max_frames, spec.seed,
                           spec.max_frames_auto)

    def starts_with_role(self, spec: RequestSpec) -> bool:
        """The text part of the prompt starts with the assistant role, so the voice-only prefix is shared."""
        role = self.runtime.tokenizer.role_ids
        return spec.text_ids is not None and spec.text_ids[: len(role)].tolist() == role

    def ref_text_tokens(self, voice: VoiceProfile) -> int:
        """Tokens of an ICL clone's transcript (its template excluded)."""
        return len(self.runtime.tokenizer.ref_ids(voice.ref_text)) - ROLE_LEN - REF_TAIL_LEN

    def frame_budget(self, num_text_tokens: int) -> int:
        """The runaway guard used when `max_new_frames` is None: 50 + 10 frames per text token, capped by the
        checkpoint's `max_new_tokens` - 1 (what the official loop can produce)."""
        cap = self.runtime.generation_defaults.max_new_tokens - 1
        return min(cap, MIN_DEFAULT_FRAMES + FRAMES_PER_TEXT_TOKEN * num_text_tokens)

    def segment_text(self, text: str) -> list[str]:
        """The consecutive generations a complete text is spoken as: one, unless its token count exceeds what
        one generation's frame budget covers; then whole sentences grouped under that limit."""
        defaults, tok = self.runtime.generation_defaults, self.runtime.tokenizer
        max_tokens = (defaults.max_new_tokens - 1 - MIN_DEFAULT_FRAMES) // FRAMES_PER_TEXT_TOKEN
        return group_segments(text, lambda t: len(tok.encode(t)), max(1, max_tokens))

    def check_voice(self, voice: VoiceProfile) -> VoiceProfile:
        rt = self.runtime
        if not isinstance(voice, VoiceProfile):
            raise InvalidInputError(
                f"voice must be a VoiceProfile (from clone_voice, speaker or design_voice) or a voice name, "
                f"got {voice!r}"
            )
        if voice.model_type != rt.model_type:
            raise InvalidInputError(
                f"{voice!r} was made for a {voice.model_type} checkpoint; this one is {rt.model_type}"
            )
        if voice.hidden_size is not None and voice.hidden_size != rt.talker.hidden_size:
            raise InvalidInputError(
                f"{voice!r} was made with a model of width {voice.hidden_size}; this one has "
                f"{rt.talker.hidden_size} (clone it again with this model)"
            )
        return voice

    def language_id(self, language: str, voice: VoiceProfile) -> int | None:
        config = self.runtime.config
        key = language_name(language).lower()
        if key not in config.languages:
            raise InvalidInputError(f"language {language!r}: this checkpoint speaks {', '.join(config.languages)}")
        tc = config.talker
        language_id = None if key == "auto" else tc.codec_language_id[key]
        if voice.kind == "speaker" and key in ("chinese", "auto"):
            dialect = tc.spk_is_dialect.get(voice.speaker or "", False)
            if dialect:
                language_id = tc.codec_language_id[str(dialect)]
        return language_id

    # ---- model work ---------------------------------------------------------------------------------------

    def build(self, spec: RequestSpec) -> tuple[Prompt, RowRequest]:
        """The prompt rows and generation row of a validated request (runs the embeddings)."""
        rt = self.runtime
        generator = None
        if spec.seed is not None:
            generator = torch.Generator(device=rt.device).manual_seed(spec.seed)
        with torch.inference_mode():
            prompt = build_prompt(
                rt.talker, rt.config, spec.text_ids.to(rt.device), self._prompt_voice(spec.voice),
                spec.language_id, spec.non_streaming_layout,
            )
        return prompt, RowRequest(prompt=prompt, params=spec.params, max_frames=spec.max_frames, generator=generator)

    def offline_codes(self, specs: list[RequestSpec]) -> Tensor:
        """The codes of whole-text specs (a long text's segments), generated offline in this thread with one
        random sequence across the segments. Counted in `offline_stats`."""
        parts, generator = [], None
        for spec in specs:
            _, request = self.build(spec)
            if generator is not None:
                request.generator = generator
            generator = request.generator
            parts.append(generate_frames(self.runtime.talker, self.runtime.config, request).cpu())
        codes = torch.cat(parts)
        with self._offline_lock:
            self._offline["generations"] += 1
            self._offline["frames"] += codes.shape[0]
        return codes

    def offline_stats(self) -> dict[str, int]:
        """Offline generations and frames so far (they take no engine step)."""
        with self._offline_lock:
            return dict(self._offline)

    def offline_audio(self, voice: VoiceProfile, codes: Tensor) -> np.ndarray:
        """Audio of generated codes, decoded whole. ICL clones decode reference + generated codes together and
        drop the reference part (the reference is the decoder's left context), as the official output does."""
        codec = self.runtime.codec
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        if voice.kind != "clone_icl":
            return codec.decode(codes)
        ref = voice.ref_codes
        return codec.decode(torch.cat([ref, codes]))[ref.shape[0] * codec.samples_per_frame :]

    def _prompt_voice(self, voice: VoiceProfile) -> PromptVoice:
        rt = self.runtime
        dev = rt.device
        speaker_row = None
        if voice.kind == "speaker":
            spk = torch.tensor(rt.config.talker.spk_id[voice.speaker], device=dev)
            with torch.inference_mode():
                speaker_row = rt.talker.codec_rows(spk)
        elif voice.speaker_embedding is not None:
            speaker_row = voice.speaker_embedding.to(dev, rt.dtype)
        instruct_ids = None
        if voice.instruct:
            instruct_ids = rt.tokenizer.instruct_ids(voice.instruct).to(dev)
        ref_ids = ref_codes = None
        if voice.kind == "clone_icl":
            ref_ids = rt.tokenizer.ref_ids(voice.ref_text).to(dev)
            ref_codes = voice.ref_codes.to(dev)
        return PromptVoice(speaker_row=speaker_row, instruct_ids=instruct_ids, ref_ids=ref_ids, ref_codes=ref_codes)
