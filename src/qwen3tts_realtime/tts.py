"""`Qwen3TTS`: load a Qwen3-TTS 12 Hz checkpoint, make voices, speak.

    tts = Qwen3TTS.from_pretrained("Qwen/Qwen3-TTS-12Hz-0.6B-Base")      # or a local folder
    voice = tts.clone_voice("ref.wav", ref_text="...")                     # Base
    out = tts.generate("Hello there.", voice=voice, language="English")   # offline: out.codes, out.audio
    async for chunk in tts.open_stream("Hello there.", voice=voice):       # streaming (or `for` in a thread)
        play(chunk.audio)

The loader, the voice factory and a thin facade: requests are validated and built by `engine.request`, streams
run on the `Engine`, names resolve through `voices` (this model's own voice library).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .engine.engine import DEFAULT_CHUNK_FRAMES, Engine, check_chunk_frames
from .engine.request import Requests, Runtime
from .engine.sampling import SamplingParams
from .engine.stream import Stream
from .errors import InvalidInputError
from .model.config import GenerationDefaults
from .model.loading import load_model
from .model.omp import releases_omp_workers
from .voices.factory import VoiceFactory
from .voices.library import VoiceLibrary, default_voice_dir
from .voices.profile import VoiceProfile

__all__ = ["Qwen3TTS", "GenerationResult"]



@dataclass(frozen=True)
class GenerationResult:
    """Offline generation output: the talker's codes (reference codes excluded) and their audio."""

    codes: Tensor  # [frames, 16] int64
    audio: np.ndarray  # float32 mono, frames × 1920 samples
    sample_rate: int


class Qwen3TTS(VoiceFactory):
    """A loaded checkpoint (text tokenizer, talker, speech codec, and for Base the speaker encoder), its voices
    and its streaming engine. Build it with `from_pretrained`."""

    def __init__(self, loaded, *, voice_dir: str | Path | None = None) -> None:  # noqa: ANN001 - model.LoadedModel
        self.folder, self.config, self.talker = loaded.folder, loaded.config, loaded.talker
        self.codec, self.speaker_encoder, self.tokenizer = loaded.codec, loaded.speaker_encoder, loaded.tokenizer
        self.dtype, self.device = loaded.dtype, loaded.device
        self.quantize, self.linear_backend = loaded.quantize, loaded.linear_backend
        self.max_streams = 16  # read when the engine starts
        self.requests = Requests(Runtime(self.config, self.talker, self.codec, self.tokenizer,
                                         loaded.generation_defaults, self.device, self.dtype))
        self._voice_dir = None if voice_dir is None else Path(voice_dir)
        self._voices: VoiceLibrary | None = None
        self._engine: Engine | None = None

    @classmethod
    @releases_omp_workers  # this thread's OpenMP workers would slow the engine thread (see model/omp.py)
    def from_pretrained(
        cls,
        model: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        revision: str | None = None,
        quantize: str | None = None,
        linear_backend: str = "auto",
        voice_dir: str | Path | None = None,
    ) -> Qwen3TTS:
        """Load a checkpoint from a local folder or a Hugging Face id (downloaded once, then cached).

        Args:
            model: e.g. "Qwen/Qwen3-TTS-12Hz-0.6B-Base", or a folder in the official layout.
            device: "cpu", "cuda", "cuda:1", ...; default "cuda" when torch sees a CUDA device, else "cpu".
            dtype: "float32" (CPU default), "float64", "bfloat16" (accelerator default), "float16" (GPU only).
            revision: Hugging Face revision for hub ids.
            quantize: opt-in CPU weight format for the talker, text projection and code predictor: "fp16"
                (float16 weights, float32 math), "int8" (int8 weights per channel, floating or 14-bit integer
                activations by kernel), "int4" (4-bit weights in groups), "w8a8" (int8 weights and 7-bit activations
                per row). On x86-64 with AVX2 and a C compiler, int8 and int4 run this project's kernels
                (`model/native_kernels.py`), the fastest there.
                Streaming equals offline and batched equals alone in every mode; how far each departs from
                float32 is measured in benchmarks/results/fidelity-*.json. See `model/quantized_linear.py`.
            linear_backend: the kernel. Without `quantize`: "auto" (default: the larger layers' weights
                pre-packed for oneDNN on CPU, where it is available), "onednn" (pack every layer; required) or
                "torch" (plain `nn.Linear`); see `model/packed_linear.py`. With `quantize`: "auto" (the fastest
                kernel of the format measured on this machine, remembered in the user cache) or a kernel name
                from `model.quantized_linear.KERNELS`.
            voice_dir: the voice library whose names `generate`/`open_stream` accept (`voices`); default
                `$QWEN3TTS_VOICE_DIR` or the user cache.

        Raises:
            CheckpointError: not a Qwen3-TTS 12 Hz checkpoint, or a missing/unexpected weight.
            InvalidInputError: an unknown device, dtype, quantize or linear_backend, or one that cannot run here.
        """
        loaded = load_model(model, device=device, dtype=dtype, revision=revision, quantize=quantize,
                            linear_backend=linear_backend)
        return cls(loaded, voice_dir=voice_dir)

    # ---- what the checkpoint is -------------------------------------------------------------------------

    @property
    def model_type(self) -> str:  # "base" | "custom_voice" | "voice_design"
        return self.config.model_type

    @property
    def model_size(self) -> str:  # "0b6" | "1b7"
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
    def generation_defaults(self) -> GenerationDefaults:
        """The checkpoint's generation_config.json (sampling defaults, `max_new_tokens`)."""
        return self.requests.runtime.generation_defaults

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def voices(self) -> VoiceLibrary:
        """This model's voice library (`voice_dir` of `from_pretrained`): the names `generate` and `open_stream`
        accept besides built-in speakers. Fixed for the model's life."""
        if self._voices is None:
            self._voices = VoiceLibrary(self, self._voice_dir)
        return self._voices

    def resolve_voice(self, voice: VoiceProfile | str) -> VoiceProfile:
        """A `VoiceProfile` from a profile, a name in `voices`, or a built-in speaker name (CustomVoice).

        Raises:
            InvalidInputError: an unknown name, a voice made for another checkpoint, or not a voice.
        """
        if isinstance(voice, VoiceProfile):
            return self.requests.check_voice(voice)
        if not isinstance(voice, str):
            raise InvalidInputError(f"voice must be a VoiceProfile or a voice name, got {voice!r}")
        no_library = self._voices is None and self._voice_dir is None and not default_voice_dir().exists()
        if no_library:  # no library on disk: only built-in names exist (and nothing is created to find out)
            if voice.lower() in self.config.talker.spk_id:
                return self.speaker(voice)
            known = f"built-in speakers: {', '.join(self.speakers)}" if self.speakers else "no built-in speakers"
            raise InvalidInputError(f"unknown voice {voice!r}: this {self.model_type} checkpoint has {known}")
        return self.voices.resolve(voice)

    # ---- speaking ---------------------------------------------------------------------------------------

    @releases_omp_workers
    def generate(
        self,
        text: str,
        *,
        voice: VoiceProfile | str,
        language: str = "Auto",
        sampling: SamplingParams | None = None,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> GenerationResult:
        """Speak a whole text offline.

        Args:
            text: what to say.
            voice: a profile from `clone_voice`, `speaker` or `design_voice`, or a voice name (`voices`, built-in).
            language: one of `languages` (case-insensitive); "Auto" lets the model decide.
            sampling: sampling switches; `None` = the checkpoint's generation_config.json.
            non_streaming_layout: the official `non_streaming_mode`; `None` = the official default per voice
                kind (False for clones, True for built-in speakers and designed voices).
            max_new_frames: at most this many frames (12.5 per second). `None`: 50 + 10 per text token, capped by
                generation_config.json's `max_new_tokens` - 1; a text beyond that cap is spoken as consecutive
                generations split at sentences.
            seed: seeds this request's own random generator (reproducible sampling); `None` draws from
                torch's default generator.

        Returns:
            GenerationResult with codes [frames, 16] and float32 audio at 24 kHz.

        Raises:
            InvalidInputError: a `text` that is not a non-empty string; a bad voice, language or option.
            GenerationError: the model's values turned non-finite.
        """
        _check_whole_text(text)
        profile = self.resolve_voice(voice)
        specs = self.requests.specs(text, profile, language, sampling=sampling,
                                    non_streaming_layout=non_streaming_layout, max_new_frames=max_new_frames, seed=seed)
        codes = self.requests.offline_codes(specs)
        audio = self.requests.offline_audio(profile, codes)
        return GenerationResult(codes=codes, audio=audio, sample_rate=self.sample_rate)

    def open_stream(
        self,
        text: str | None = None,
        *,
        voice: VoiceProfile | str,
        language: str = "Auto",
        sampling: SamplingParams | None = None,
        chunk_frames: tuple[int, ...] = DEFAULT_CHUNK_FRAMES,
        non_streaming_layout: bool | None = None,
        max_new_frames: int | None = None,
        seed: int | None = None,
    ) -> Stream:
        """Stream speech; the `TTSEngine` protocol entry point. Thread-safe, never blocks on the engine.

        With `text`, the whole text is spoken (same arguments as `generate`; the concatenated chunks equal its
        audio). Without, feed text as it arrives (e.g. LLM tokens) and close the input:

            s = tts.open_stream(voice="ryan", language="English")
            s.push_text("Sure, I can"); s.push_text(" help with that."); s.end_input()
            async for chunk in s: ...        # or `for chunk in s` in a thread: either works, wherever s was made

        Incremental text always uses the streaming (dual-track) layout; generation starts once a few tokens are
        stable (a clause end, `Engine.start_tokens` tokens, or the end of input) and pauses, rather than ending
        the speech, when the text runs out before `end_input()`. `chunk_frames`: frames per chunk, the last size
        repeating (default (1, 2, 4, 8): first audio after one 80 ms frame). Validation errors raise here;
        errors during generation are raised by the iteration.
        """
        if text is not None:
            _check_whole_text(text)
        sizes = check_chunk_frames(chunk_frames)
        specs = self.requests.specs(text, self.resolve_voice(voice), language, sampling=sampling,
                                    non_streaming_layout=non_streaming_layout, max_new_frames=max_new_frames, seed=seed)
        return self.engine._submit(specs[0], sizes, more=specs[1:])

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
        with self.open_stream("Hello.", voice=voice, max_new_frames=2, seed=0) as stream:
            for _ in stream:
                pass

    @property
    def engine(self) -> Engine:
        """The streaming engine (started on first use, with `max_streams`)."""
        if self._engine is None:
            self._engine = Engine(self.requests, max_streams=self.max_streams)
        return self._engine

    def stats(self) -> dict:
        """Streaming engine statistics (active/queued streams, steps, batch sizes, host reads, warm voices), and
        `offline`: the `generate()` calls and frames made in callers' threads (they take no engine step)."""
        return {**self.engine.stats(), "offline": self.requests.offline_stats()}

    def close(self) -> None:
        """Stop the engine threads (open streams are cancelled). Idempotent; the model stays usable offline."""
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

def _check_whole_text(text: object) -> None:
    """`generate` and `open_stream(text)` speak a whole text (`open_stream()` without one is incremental)."""
    if not isinstance(text, str):
        raise InvalidInputError(
            f"text={text!r}; give the text to say as a non-empty string (for text that arrives in pieces, "
            "use open_stream() without text and push_text())"
        )
