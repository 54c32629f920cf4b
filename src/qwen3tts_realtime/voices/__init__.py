"""Voices: `VoiceProfile` (one immutable voice) and `VoiceLibrary` (named voices prepared once, then stored).

Import them from `qwen3tts_realtime`; the modules here are the implementation (profile, library, store,
preprocess, identity).
"""
