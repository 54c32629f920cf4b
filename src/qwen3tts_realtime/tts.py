"""`Qwen3TTS`: load a Qwen3-TTS 12 Hz checkpoint, make voices, generate speech.

    tts = Qwen3TTS.from_pretrained("Qwen/Qwen3-TTS-12Hz-0.6B-Base")      # or a local folder
    voice = tts.clone_voice("ref.wav", ref_text="...")                     # Base
    out = tts.generate("Hello there.", voice=voice, language="English")
    out.codes, out.audio, out.sample_rate
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .engine.engine import DEFAULT_CHUNK_FRAMES, Engine, check_chunk_frames
from .engine.generation import RowRequest, generate_frames
from .engine.omp import releases_omp_workers
from .engine.sampling import SamplingParams
from .engine.stream import Stream
from .errors import InvalidInputError, UnsupportedError
from .model.audio_input import load_reference_audio
from .model.checkpoint import load_module_weights, parse_device, parse_dtype, resolve_checkpoint
from .model.codec import AudioLike, SpeechCodec
from .model.config import GenerationDefaults, Qwen3TTSConfig, load_json
from .model.kernel_choice import choose_kernel
from .model.memory import release_free_heap
from .model.packed_linear import AUTO_MIN_WEIGHTS, pack_linears, resolve_linear_backend
from .model.prompt import Prompt, PromptVoice, build_prompt
from .model.quantize import quantizing_loader, widest_linear_shape
from .model.quantized_linear import check_quantize
from .model.speaker_encoder import SpeakerEncoder
from .model.talker import Talker
from .model.text_tokenizer import TextTokenizer
from .text.segment import group_segments
from .voices.profile import VoiceProfile

if TYPE_CHECKING:
    from .voices.library import VoiceLibrary

__all__ = ["Qwen3TTS", "GenerationResult"]

log = logging.getLogger("qwen3tts_realtime")

FRAMES_PER_TEXT_TOKEN = 10  # generous: real speech runs at about 3 frames (0.24 s) per Qwen2 text token
MIN_DEFAULT_FRAMES = 50  # 4 s: covers short texts, and the golden cases' 47 frames


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


@dataclass(frozen=True)
class GenerationResult:
    """Offline generation output: the talker's codes (reference codes excluded) and their audio."""

    codes: Tensor  # [frames, 16] int64
    audio: np.ndarray  # float32 mono, frames × 1920 samples
    sample_rate: int


class Qwen3TTS:
    """A loaded checkpoint: text tokenizer, talker, speech codec and (Base) speaker encoder."""

    def __init__(
        self,
        folder: Path,
        config: Qwen3TTSConfig,
        talker: Talker,
        codec: SpeechCodec,
        speaker_encoder: SpeakerEncoder | None,
        tokenizer: TextTokenizer,
        generation_defaults: GenerationDefaults,
        *,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.folder, self.config = folder, config
        self.talker, self.codec, self.speaker_encoder = talker, codec, speaker_encoder
        self.tokenizer, self.generation_defaults = tokenizer, generation_defaults
        self.dtype, self.device = dtype, device
        self.quantize: str | None = None  # set by from_pretrained (see model/quantized_linear.py)
        self.linear_backend = "torch"  # set by from_pretrained: "onednn", "torch" or the quantized kernel
        self.max_streams = 16
        self.voice_library: VoiceLibrary | None = None  # consulted by resolve_voice for names
        self._speaker_profiles: dict[tuple[str, str | None], VoiceProfile] = {}
        self._engine: Engine | None = None

    @classmethod
    @releases_omp_workers  # this thread's OpenMP workers would slow the engine thread (see engine/omp.py)
    def from_pretrained(
        cls,
        model: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
        quantize: str | None = None,
        linear_backend: str = "auto",
    ) -> Qwen3TTS:
        """Load a checkpoint from a local folder or a Hugging Face id (downloaded once, then cached).

        Args:
            model: e.g. "Qwen/Qwen3-TTS-12Hz-0.6B-Base", or a folder in the official layout.
            device: "cpu" (default), "cuda", "cuda:1", ...
            dtype: "float32" (CPU default), "float64", "bfloat16" (accelerator default), "float16" (GPU only).
            revision: Hugging Face revision for hub ids.
            quantize: opt-in CPU weight format for the talker, text projection and code predictor: "fp16"
                (float16 weights, float32 math), "int8" (int8 weights per channel, floating activations), "int4"
                (4-bit weights in groups), "w8a8" (int8 weights and 7-bit activations per row: the fastest on x86).
                Streaming equals offline and batched equals alone in every mode; how far each departs from
                float32 is measured in benchmarks/results/fidelity-*.json. See `model/quantized_linear.py`.
            linear_backend: the kernel. Without `quantize`: "auto" (default: the larger layers' weights
                pre-packed for oneDNN on CPU, where it is available), "onednn" (pack every layer; required) or
                "torch" (plain `nn.Linear`); see `model/packed_linear.py`. With `quantize`: "auto" (the fastest
                kernel of the format measured on this machine, remembered in the user cache) or a kernel name
                from `model.quantized_linear.KERNELS`.

        Raises:
            CheckpointError: not a Qwen3-TTS 12 Hz checkpoint, or a missing/unexpected weight.
            InvalidInputError: an unknown device, dtype, quantize or linear_backend, or one that cannot run here.
        """
        dev = parse_device(device)
        dt = parse_dtype(dtype, dev)
        quantize = check_quantize(quantize, dev, dt)
        backend = linear_backend if quantize else resolve_linear_backend(linear_backend, dev, dt)
        folder = resolve_checkpoint(model, revision=revision)
        config = Qwen3TTSConfig.from_dict(load_json(folder / "config.json"))
        weights = folder / "model.safetensors"
        with torch.device("meta"):
            talker = Talker(config.talker)
        convert = None
        if quantize is not None:
            backend = choose_kernel(quantize, linear_backend, widest_linear_shape(talker, quantize))
            convert = quantizing_loader(talker, quantize, backend)
        load_module_weights(
            talker, weights, "talker.", dtype=dt, device=dev, compact=talker.lookup_tables(), convert=convert
        )
        speaker_encoder = None
        if config.speaker_encoder is not None:
            with torch.device("meta"):
                speaker_encoder = SpeakerEncoder(config.speaker_encoder)
            load_module_weights(speaker_encoder, weights, "speaker_encoder.", dtype=dt, device=dev)
            speaker_encoder.to(dev).eval()
        _check_no_stray_keys(weights, has_speaker_encoder=speaker_encoder is not None)
        codec = SpeechCodec(folder / "speech_tokenizer", dtype=dt, device=dev)
        gen_path = folder / "generation_config.json"
        defaults = GenerationDefaults.from_dict(load_json(gen_path)) if gen_path.exists() else GenerationDefaults()
        talker.eval()
        if backend == "onednn":  # every talker linear: decoder, text projection, codec head, code predictor
            pack_linears(talker, min_weights=AUTO_MIN_WEIGHTS if linear_backend == "auto" else 0)
        tts = cls(
            folder, config, talker, codec, speaker_encoder, TextTokenizer(folder), defaults, dtype=dt, device=dev
        )
        tts.quantize = quantize
        tts.linear_backend = backend
        release_free_heap()  # the loader's temporaries (see model/memory.py)
        return tts

    # ---- what the checkpoint is -------------------------------------------------------------------------

    @property
    def model_type(self) -> str:
        """"base" | "custom_voice" | "voice_design"."""
        return self.config.model_type

    @property
    def model_size(self) -> str:
        """"0b6" | "1b7"."""
        return self.config.model_size

    @property
    def languages(self) -> list[str]:
        """Accepted `language` values (case-insensitive): "auto" and the checkpoint's languages."""
        return self.config.languages

    @property
    def speakers(self) -> list[str]:
        """Built-in speaker names (CustomVoice checkpoints; empty otherwise)."""
        return self.config.speakers

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    # ---- voices -----------------------------------------------------------------------------------------

    @releases_omp_workers
    def speaker_embedding(self, audio: AudioLike) -> Tensor:
        """Speaker embedding [talker hidden] (float32, CPU) of a reference clip. Base checkpoints only.

        Raises:
            UnsupportedError: the checkpoint has no speaker encoder (CustomVoice, VoiceDesign).
            AudioInputError: unusable audio.
        """
        self._require("base", "speaker_embedding")
        return self._embed(load_reference_audio(audio, 24000))

    @releases_omp_workers
    def clone_voice(
        self, audio: AudioLike, ref_text: str | None = None, *, x_vector_only: bool = False
    ) -> VoiceProfile:
        """A cloned voice from a reference clip (Base checkpoints).

        Args:
            audio: path or `(samples, sample_rate)`.
            ref_text: the clip's transcript; required for the default in-context (ICL) clone.
            x_vector_only: clone from the speaker embedding alone (no transcript needed; less faithful).

        Raises:
            UnsupportedError: not a Base checkpoint.
            InvalidInputError: ICL clone without `ref_text`; unusable audio.
        """
        self._require("base", "clone_voice")
        if not x_vector_only:
            self.tokenizer.ref_ids(ref_text)  # validates the transcript before any audio work
        wav = load_reference_audio(audio, 24000)
        embedding = self._embed(wav)
        hidden = self.talker.hidden_size
        if x_vector_only:
            return VoiceProfile("clone_xvector", self.model_type, hidden_size=hidden, speaker_embedding=embedding)
        codes = self.codec.encode_samples(wav)
        return VoiceProfile(
            "clone_icl",
            self.model_type,
            hidden_size=hidden,
            speaker_embedding=embedding,
            ref_codes=codes,
            ref_text=ref_text,
        )

    @releases_omp_workers
    def speaker(self, name: str, instruct: str | None = None) -> VoiceProfile:
        """A built-in speaker of a CustomVoice checkpoint (see `speakers`), with an optional instruction.

        The 0.6B CustomVoice model ignores instructions (as officially); passing one there warns.

        Raises:
            UnsupportedError: not a CustomVoice checkpoint.
            InvalidInputError: unknown speaker.
        """
        self._require("custom_voice", "speaker")
        key = str(name).lower()
        if key not in self.config.talker.spk_id:
            raise InvalidInputError(f"unknown speaker {name!r}; this checkpoint has: {', '.join(self.speakers)}")
        if instruct and self.model_size == "0b6":
            warnings.warn(
                "the 0.6B CustomVoice model ignores instruct (as the official implementation does); "
                "use a 1.7B CustomVoice checkpoint for instructions",
                UserWarning,
                stacklevel=2,
            )
            instruct = None
        # One profile per (speaker, instruct): the engine keeps warm state per profile object.
        memo_key = (key, instruct or None)
        profile = self._speaker_profiles.get(memo_key)
        if profile is None:
            profile = self._speaker_profiles.setdefault(
                memo_key, VoiceProfile("speaker", self.model_type, speaker=key, instruct=instruct or None)
            )
        return profile

    @releases_omp_workers
    def design_voice(self, instruct: str) -> VoiceProfile:
        """A voice described in words (VoiceDesign checkpoints), e.g. "A calm, low male voice".

        Raises:
            UnsupportedError: not a VoiceDesign checkpoint.
        """
        self._require("voice_design", "design_voice")
        if not isinstance(instruct, str):
            raise InvalidInputError(f"instruct must be a string describing the voice, got {instruct!r}")
        return VoiceProfile("design", self.model_type, instruct=instruct or None)

    # ---- generation -------------------------------------------------------------------------------------

    @releases_omp_workers
    def generate(
        self,
        text: str,
        voice: VoiceProfile,
        language: str = "Auto",
        *,
        sampling: SamplingParams | None = None,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> GenerationResult:
        """Generate the whole utterance offline.

        Args:
            text: what to say.
            voice: from `clone_voice`, `speaker` or `design_voice` of this checkpoint.
            language: one of `languages` (case-insensitive); "Auto" lets the model decide.
            sampling: sampling switches; `None` = the checkpoint's generation_config.json.
            non_streaming_layout: the official `non_streaming_mode`; `None` = the official default per voice
                kind (False for clones, True for built-in speakers and designed voices).
            max_new_frames: at most this many frames (12.5 per second). `None`: `default_max_frames(text)`,
                i.e. 50 + 10 per text token, capped by generation_config.json's `max_new_tokens` - 1; a text
                beyond that cap is spoken as consecutive generations split at sentences (`segment_text`).
            seed: seeds this request's own random generator (reproducible sampling); `None` draws from
                torch's default generator.

        Returns:
            GenerationResult with codes [frames, 16] and float32 audio at 24 kHz.

        Raises:
            InvalidInputError: a `text` that is not a non-empty string; a bad voice, language or option.
        """
        _check_whole_text(text)
        specs = self._segment_specs(text, voice, language, sampling, non_streaming_layout, max_new_frames, seed)
        parts, generator = [], None
        for spec in specs:
            _, request = self.build_request(spec)
            if generator is not None:
                request.generator = generator  # one random sequence across the segments of a long text
            generator = request.generator
            parts.append(generate_frames(self.talker, self.config, request).cpu())
        codes = torch.cat(parts)
        return GenerationResult(codes=codes, audio=self._decode_for(voice, codes), sample_rate=self.sample_rate)

    def segment_text(self, text: str) -> list[str]:
        """The consecutive generations a complete text is spoken as: one, unless its token count exceeds what
        one generation's frame budget covers; then whole sentences grouped under that limit."""
        max_tokens = (self.generation_defaults.max_new_tokens - 1 - MIN_DEFAULT_FRAMES) // FRAMES_PER_TEXT_TOKEN
        return group_segments(text, lambda t: len(self.tokenizer.encode(t)), max(1, max_tokens))

    def _segment_specs(self, text, voice, language, sampling, non_streaming_layout, max_new_frames, seed):
        texts = [text] if text is None or max_new_frames is not None else self.segment_text(text)
        return [
            self.request_spec(t, voice, language, sampling=sampling, non_streaming_layout=non_streaming_layout,
                              max_new_frames=max_new_frames, seed=seed)
            for t in texts
        ]

    # ---- streaming ----------------------------------------------------------------------------------------

    def stream(
        self,
        text: str,
        voice: VoiceProfile,
        language: str = "Auto",
        *,
        sampling: SamplingParams | None = None,
        chunk_frames: tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> Stream:
        """Stream speech for a complete text, from asyncio: `async with tts.stream(...) as s: async for chunk in s`.

        Same arguments as `generate`, plus `chunk_frames`: frames per chunk, the last size repeating (default
        (1, 2, 4, 8): first audio after one 80 ms frame). The concatenated chunks equal `generate()`'s audio.
        Validation errors raise here; errors during generation are raised by the iteration.

        Raises:
            RuntimeError: called outside a running event loop (use `stream_sync`).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("stream() needs a running event loop; from threads use stream_sync()") from None
        _check_whole_text(text)
        return self._submit(text, voice, language, sampling, chunk_frames, non_streaming_layout, max_new_frames,
                            seed, loop)

    def stream_sync(
        self,
        text: str,
        voice: VoiceProfile,
        language: str = "Auto",
        *,
        sampling: SamplingParams | None = None,
        chunk_frames: tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> Stream:
        """`stream` for threads: `with tts.stream_sync(...) as s: for chunk in s: ...` (blocking iteration)."""
        _check_whole_text(text)
        return self._submit(text, voice, language, sampling, chunk_frames, non_streaming_layout, max_new_frames,
                            seed, None)

    def open_stream(
        self,
        voice: VoiceProfile | str,
        *,
        language: str = "Auto",
        sampling: SamplingParams | None = None,
        chunk_frames: tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
        non_streaming_layout: bool | None = None,
        text: str | None = None,
        seed: int | None = None,
        max_new_frames: int | None = None,
    ) -> Stream:
        """Open a stream on the engine; the `TTSEngine` protocol entry point. Thread-safe.

        Without `text`, feed it as it arrives (e.g. LLM tokens) and close the input:

            s = tts.open_stream(voice, language="English")
            s.push_text("Sure, I can"); s.push_text(" help with that."); s.end_input()
            async for chunk in s: ...        # (or `for chunk in s` outside asyncio)

        Incremental text always uses the streaming (dual-track) layout; generation starts once a few tokens
        are stable (a clause end, `Engine.start_tokens` tokens, or the end of input) and pauses, rather than
        ending the speech, when the text runs out before `end_input()`. With `text` this is `stream` (inside
        an event loop) or `stream_sync` (outside one).
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        return self._submit(text, self.resolve_voice(voice), language, sampling, chunk_frames,
                            non_streaming_layout, max_new_frames, seed, loop)

    def resolve_voice(self, voice: VoiceProfile | str) -> VoiceProfile:
        """A `VoiceProfile` from a profile, a name in `voice_library` (when one is attached) or a built-in
        speaker name (CustomVoice).

        Raises:
            InvalidInputError: an unknown name, or not a voice.
        """
        if isinstance(voice, VoiceProfile):
            return self._check_voice(voice)
        if isinstance(voice, str):
            if self.voice_library is not None:
                return self.voice_library.resolve(voice)
            if voice.lower() in self.config.talker.spk_id:
                return self.speaker(voice)
            known = f"built-in speakers: {', '.join(self.speakers)}" if self.speakers else "no built-in speakers"
            raise InvalidInputError(f"unknown voice {voice!r}: this {self.model_type} checkpoint has {known}")
        raise InvalidInputError(f"voice must be a VoiceProfile or a name, got {voice!r}")

    def warmup(self) -> None:
        """Run a two-frame generation through the engine, so the first request pays no one-time costs
        (thread start, kernel initialisation). Blocking: from asyncio use `await asyncio.to_thread(...)`."""
        if self.model_type == "custom_voice":
            voice = self.speaker(self.speakers[0])
        elif self.model_type == "voice_design":
            voice = self.design_voice("A neutral voice.")
        else:
            zeros = torch.zeros(self.talker.hidden_size)
            voice = VoiceProfile("clone_xvector", "base", hidden_size=self.talker.hidden_size, speaker_embedding=zeros)
        with self.stream_sync("Hello.", voice, max_new_frames=2, seed=0) as stream:
            for _ in stream:
                pass

    @property
    def engine(self) -> Engine:
        """The streaming engine (started on first use)."""
        if self._engine is None:
            self._engine = Engine(self, max_streams=self.max_streams)
        return self._engine

    def stats(self) -> dict:
        """Engine statistics: active/queued streams, steps, batch sizes seen, warm-voice work."""
        return self.engine.stats()

    def close(self) -> None:
        """Stop the engine thread (open streams are cancelled). Idempotent; the model stays usable offline."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Qwen3TTS:
        """`with Qwen3TTS.from_pretrained(...) as tts:` closes the engine when the block is left."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Qwen3TTS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _submit(self, text, voice, language, sampling, chunk_frames, non_streaming_layout, max_new_frames, seed,
                loop) -> Stream:
        sizes = check_chunk_frames(chunk_frames)
        specs = self._segment_specs(text, voice, language, sampling, non_streaming_layout, max_new_frames, seed)
        return self.engine.submit(specs[0], sizes, loop, more=specs[1:])

    def default_max_frames(self, text: str) -> int:
        """The runaway guard used when `max_new_frames` is None: 50 + 10 frames per text token, capped by
        the checkpoint's `max_new_tokens` - 1 (what the official loop can produce)."""
        return self.frame_budget(len(self.tokenizer.encode(text)))

    def frame_budget(self, num_text_tokens: int) -> int:
        """`default_max_frames` for a text of `num_text_tokens` tokens."""
        cap = self.generation_defaults.max_new_tokens - 1
        return min(cap, MIN_DEFAULT_FRAMES + FRAMES_PER_TEXT_TOKEN * num_text_tokens)

    def prepare_request(
        self,
        text: str,
        voice: VoiceProfile,
        language: str = "Auto",
        *,
        sampling: SamplingParams | None = None,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> tuple[Prompt, RowRequest]:
        """Validate a request and build its prompt and generation row."""
        spec = self.request_spec(
            text, voice, language, sampling=sampling, non_streaming_layout=non_streaming_layout,
            max_new_frames=max_new_frames, seed=seed,
        )
        return self.build_request(spec)

    def request_spec(
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
        """Validate a request without touching the model (cheap; safe on an event loop). `text=None` is an
        incremental request (text pushed later; streaming layout)."""
        voice = self._check_voice(voice)
        text_ids = None if text is None else self.tokenizer.assistant_ids(text)
        language_id = self._language_id(language, voice)
        if text is None:
            if non_streaming_layout:
                raise InvalidInputError(
                    "incremental text (open_stream without text) always uses the streaming layout; "
                    "pass non_streaming_layout=None/False, or give the whole text"
                )
            non_streaming_layout = False
        elif non_streaming_layout is None:
            non_streaming_layout = voice.kind in ("speaker", "design")
        params = (sampling or SamplingParams()).resolve(self.generation_defaults)
        auto = max_new_frames is None
        if auto:
            max_new_frames = self.frame_budget(0 if text_ids is None else len(text_ids) - 8)
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

    def build_request(self, spec: RequestSpec) -> tuple[Prompt, RowRequest]:
        """The prompt rows and generation row of a validated request (runs the embeddings)."""
        generator = None
        if spec.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(spec.seed)
        with torch.inference_mode():
            prompt = build_prompt(
                self.talker,
                self.config,
                spec.text_ids.to(self.device),
                self._prompt_voice(spec.voice),
                spec.language_id,
                spec.non_streaming_layout,
            )
        return prompt, RowRequest(prompt=prompt, params=spec.params, max_frames=spec.max_frames, generator=generator)

    # ---- internals --------------------------------------------------------------------------------------

    def _require(self, model_type: str, what: str) -> None:
        if self.model_type != model_type:
            kinds = {"base": "Base", "custom_voice": "CustomVoice", "voice_design": "VoiceDesign"}
            hint = {
                "base": "clone_voice()",
                "custom_voice": "speaker(name)",
                "voice_design": "design_voice(description)",
            }[self.model_type]
            raise UnsupportedError(
                f"{what}() needs a {kinds[model_type]} checkpoint; this one is {kinds[self.model_type]} "
                f"({self.folder.name}); make its voices with {hint}"
            )

    def _embed(self, wav_24k: np.ndarray) -> Tensor:
        assert self.speaker_encoder is not None
        x = torch.from_numpy(np.ascontiguousarray(wav_24k)).to(self.device)
        return self.speaker_encoder.embed(x).to(torch.float32).cpu()

    def _check_voice(self, voice: VoiceProfile) -> VoiceProfile:
        if not isinstance(voice, VoiceProfile):
            raise InvalidInputError(
                f"voice must be a VoiceProfile (from clone_voice, speaker or design_voice), got {voice!r}"
            )
        if voice.model_type != self.model_type:
            raise InvalidInputError(
                f"{voice!r} was made for a {voice.model_type} checkpoint; this one is {self.model_type}"
            )
        if voice.hidden_size is not None and voice.hidden_size != self.talker.hidden_size:
            raise InvalidInputError(
                f"{voice!r} was made with a model of width {voice.hidden_size}; this one has "
                f"{self.talker.hidden_size} (clone it again with this model)"
            )
        return voice

    def _language_id(self, language: str, voice: VoiceProfile) -> int | None:
        key = str(language).lower()
        if key not in self.languages:
            raise InvalidInputError(f"unknown language {language!r}; accepted: {', '.join(self.languages)}")
        tc = self.config.talker
        language_id = None if key == "auto" else tc.codec_language_id[key]
        if voice.kind == "speaker" and key in ("chinese", "auto"):
            dialect = tc.spk_is_dialect.get(voice.speaker or "", False)
            if dialect:
                language_id = tc.codec_language_id[str(dialect)]
        return language_id

    def _prompt_voice(self, voice: VoiceProfile) -> PromptVoice:
        dev = self.device
        speaker_row = None
        if voice.kind == "speaker":
            spk = torch.tensor(self.config.talker.spk_id[voice.speaker], device=dev)
            with torch.inference_mode():
                speaker_row = self.talker.codec_rows(spk)
        elif voice.speaker_embedding is not None:
            speaker_row = voice.speaker_embedding.to(dev, self.dtype)
        instruct_ids = None
        if voice.instruct:
            instruct_ids = self.tokenizer.instruct_ids(voice.instruct).to(dev)
        ref_ids = ref_codes = None
        if voice.kind == "clone_icl":
            ref_ids = self.tokenizer.ref_ids(voice.ref_text).to(dev)
            ref_codes = voice.ref_codes.to(dev)
        return PromptVoice(speaker_row=speaker_row, instruct_ids=instruct_ids, ref_ids=ref_ids, ref_codes=ref_codes)

    def _decode_for(self, voice: VoiceProfile, codes: Tensor) -> np.ndarray:
        """Audio of generated codes. ICL clones decode reference + generated codes together and drop the
        reference part (the reference is the decoder's left context), as the official output does."""
        if codes.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        if voice.kind != "clone_icl":
            return self.codec.decode(codes)
        ref = voice.ref_codes
        audio = self.codec.decode(torch.cat([ref, codes]))
        return audio[ref.shape[0] * self.codec.samples_per_frame :]


def _check_whole_text(text: object) -> None:
    """`generate`, `stream` and `stream_sync` speak a whole text (None would open an incremental request)."""
    if not isinstance(text, str):
        raise InvalidInputError(
            f"text={text!r}; give the text to say as a non-empty string (for text that arrives in pieces, "
            "use open_stream() without text and push_text())"
        )


def _check_no_stray_keys(weights: Path, *, has_speaker_encoder: bool) -> None:
    """Every tensor of model.safetensors belongs to the talker or (Base) the speaker encoder."""
    from .errors import CheckpointError
    from .model.checkpoint import checkpoint_keys

    allowed = ("talker.", "speaker_encoder.") if has_speaker_encoder else ("talker.",)
    stray = [k for k in checkpoint_keys(weights) if not k.startswith(allowed)]
    if stray:
        raise CheckpointError(
            f"{weights} has {len(stray)} tensor(s) outside {' and '.join(allowed)}, e.g. {stray[0]}: "
            "it does not match its config.json (a Base checkpoint has speaker_encoder.*, others do not)"
        )
