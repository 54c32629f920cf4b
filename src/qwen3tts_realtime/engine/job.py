"""`Job`: the engine's record of one stream (request, text, slot, undecoded frames, chunk schedule)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from ..errors import InvalidInputError
from .generation import Generation
from .request import RequestSpec
from .stream import Channel
from .text_feed import PendingText

__all__ = ["Job", "DEFAULT_CHUNK_FRAMES", "check_chunk_frames"]

DEFAULT_CHUNK_FRAMES: tuple[int, ...] = (1, 2, 4, 8)  # first audio after one 80 ms frame, then growing


def check_chunk_frames(chunk_frames: tuple[int, ...] | list[int] | int) -> tuple[int, ...]:
    """Validate a chunk schedule: frames per chunk, the last size repeating."""
    sizes = (chunk_frames,) if isinstance(chunk_frames, int) else tuple(chunk_frames)
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise InvalidInputError(
            f"chunk_frames={chunk_frames!r}; give positive ints, frames per chunk with the last repeating, "
            "e.g. (1, 2, 4, 8)"
        )
    return sizes


@dataclass(eq=False)
class Job:
    spec: RequestSpec
    chunk_frames: tuple[int, ...]
    channel: Channel
    text: PendingText | None = None  # incremental requests: text arriving in fragments
    committed: list[int] = field(default_factory=list)  # incremental: ids taken from the text feed so far
    text_complete: bool = False  # incremental: the input ended and all of it is committed
    clause_ended: bool = False  # incremental: the committed text holds a clause end
    started: bool = False  # prefilled (incremental requests wait for enough text first)
    segments: list[RequestSpec] = field(default_factory=list)  # next generations of a long text
    gen: Generation | None = None  # while generating: its slot and progress
    ended: bool = False  # finished, failed or gone: to be reaped
    poisoned: bool = False  # its slot holds non-finite values (reset when freed)
    undecoded: list[Tensor] = field(default_factory=list)  # frames [16] on the device, not yet decoded
    emitted_frames: int = 0
    chunks: int = 0

    @property
    def cancelled(self) -> bool:
        return self.channel.cancel_requested.is_set()

    @property
    def finished(self) -> bool:
        """Ended, failed or gone: to be reaped."""
        return self.cancelled or self.ended

    @property
    def stepping(self) -> bool:
        return not self.finished and self.gen is not None and self.gen.can_step

    def next_chunk_size(self) -> int:
        return self.chunk_frames[min(self.chunks, len(self.chunk_frames) - 1)]
