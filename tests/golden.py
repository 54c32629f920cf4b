"""Access to the golden bundle (`../shared/golden`, read-only, never copied into the repo)."""

from __future__ import annotations

import json
import os
from pathlib import Path

GOLDEN = Path(os.environ.get("QWEN3TTS_GOLDEN", Path(__file__).resolve().parents[2] / "shared" / "golden"))


def golden_cases(kind: str | None = None) -> list[dict]:
    """Cases of `cases.json`, optionally of one kind; empty when the bundle is absent (tests then skip)."""
    path = GOLDEN / "cases.json"
    if not path.exists():
        return []
    cases = json.loads(path.read_text())["cases"]
    return [c for c in cases if kind is None or c["kind"] == kind]


def load_golden_output(case: dict) -> dict:
    """The official output tensors of one case, as torch tensors."""
    from safetensors.torch import load_file

    return load_file(str(GOLDEN / case["output"]))
