"""Qwen3-TTS (12 Hz) real-time streaming engine."""
