"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import GOLDEN


@pytest.fixture(scope="session")
def golden() -> Path:
    """The golden bundle folder; tests that need it skip when it is absent."""
    if not (GOLDEN / "cases.json").exists():
        pytest.skip(f"golden bundle not found at {GOLDEN}")
    return GOLDEN
