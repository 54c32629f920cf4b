"""The LiveKit Agents integration, imported as `qwen3tts_realtime.livekit` or `livekit.plugins.qwen3tts`."""
