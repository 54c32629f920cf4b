"""qwen3tts-realtime in LiveKit's plugin namespace: `from livekit.plugins import qwen3tts`.

The same objects as `qwen3tts_realtime.livekit` (see its docstring); importing either registers the plugin,
so `python -m livekit.agents download-files` fetches the model's weights. `livekit` and `livekit.plugins`
are namespace packages shared with livekit-agents: they have no `__init__.py` here.
"""

from qwen3tts_realtime import livekit as _livekit
from qwen3tts_realtime.livekit import *  # noqa: F403 - the same public names

__all__ = list(_livekit.__all__)
