"""The audio layer must stay importable without torch (light transports and servers use it alone)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_audio_package_does_not_import_torch() -> None:
    code = "import qwen3tts_realtime.audio, sys; assert 'torch' not in sys.modules, 'torch was imported'"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
