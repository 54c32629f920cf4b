"""`Stream`: the caller's handle on one streaming request, and `AudioChunk`, what it yields.

The engine thread produces; the caller consumes with `for` (blocking, any thread) or `async for` (any event loop),
whichever thread or loop made the stream. Hand-off: a locked deque; a blocked thread waits on a condition, an
awaiting task on a future of its own loop, which the producer resolves with `call_soon_threadsafe` (a bare call
from another thread would not wake the loop). `cancel()` works from any thread or task: the handle stops
yielding at once, and the engine drops the stream and frees its slot at its next step boundary.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AudioChunk", "Channel", "Stream", "StreamState"]


@dataclass(frozen=True)
class AudioChunk:
    """Consecutive audio of one stream.

    Attributes:
        audio: float32 mono samples at `sample_rate` (num_frames × 1920 at 24 kHz; may be empty only in a
            final chunk whose end was known after the last audio had left).
        first_frame: index of the chunk's first codec frame in the stream.
        num_frames: codec frames (80 ms each) in this chunk.
        is_last: True on exactly one chunk, the last.
        sample_rate: 24000.
        codes: the chunk's codec frames, int64 [num_frames, 16] on the CPU.
    """

    audio: np.ndarray
    first_frame: int
    num_frames: int
    is_last: bool
    sample_rate: int = 24000
    codes: Any = field(default=None, repr=False)


class StreamState(enum.Enum):
    OPEN = "open"  # queued or generating; chunks may still come
    FINISHED = "finished"  # the last chunk was delivered
    CANCELLED = "cancelled"  # cancel()/close() called before the end: nothing more is yielded
    FAILED = "failed"  # the engine delivered an error, raised to the consumer


_END = object()


class Channel:
    """The engine-to-consumer hand-off of one stream. The engine holds the channel, not the `Stream`, so an
    abandoned `Stream` can be garbage-collected (which cancels it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._items: deque[object] = deque()
        self._ready = threading.Condition(self.lock)
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future] | None = None  # an awaiting task
        self.state = StreamState.OPEN
        self.cancel_requested = threading.Event()

    def cancel(self) -> bool:
        """Mark cancelled; True if this call did it (the stream was open)."""
        with self.lock:
            if self.state is not StreamState.OPEN:
                return False
            self.state = StreamState.CANCELLED
        self.cancel_requested.set()
        self.put(_END)  # unblock a consumer waiting in get()
        return True

    def deliver(self, item: AudioChunk | BaseException) -> bool:
        """Hand an item to the consumer; False when the consumer is gone (cancelled, or its loop closed)."""
        if self.state is not StreamState.OPEN:
            return False
        return self.put(item)

    def put(self, item: object) -> bool:
        with self.lock:
            self._items.append(item)
            self._ready.notify_all()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            loop, future = waiter
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # the awaiting task's event loop is closed: nobody will read this stream
                self.cancel_requested.set()
                return False
        return True

    def get(self) -> object:
        """The next item, blocking this thread."""
        with self.lock:
            while not self._items:
                self._ready.wait()
            return self._items.popleft()

    async def aget(self) -> object:
        """The next item, awaiting in the running loop."""
        loop = asyncio.get_running_loop()
        while True:
            with self.lock:
                if self._items:
                    return self._items.popleft()
                future = loop.create_future()
                self._waiter = (loop, future)
            await future


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class Stream:
    """Handle on one streaming request. Iterate it for `AudioChunk`s with `for` or `async for` (from any thread
    or event loop, whichever made it); leave its context (`with` / `async with`) or `cancel()` to stop.

    Created by `Qwen3TTS.open_stream`. A stream that is dropped without being closed is cancelled when
    garbage-collected.
    """

    def __init__(
        self,
        channel: Channel,
        on_cancel: Callable[[], None],
        *,
        push_text: Callable[[str], None] | None = None,
        end_input: Callable[[], None] | None = None,
    ) -> None:
        self._channel = channel
        self._on_cancel = on_cancel
        self._push_text = push_text
        self._end_input = end_input
        weakref.finalize(self, _cancel_channel, channel, on_cancel)

    @property
    def incremental(self) -> bool:
        """True when the text is pushed with `push_text` (opened without text)."""
        return self._push_text is not None

    def push_text(self, fragment: str) -> None:
        """Append text (any fragment: LLM tokens, words, sentences). Thread-safe; never blocks.

        Raises:
            InvalidInputError: after `end_input()`, or not a str.
            RuntimeError: the stream was opened with its whole text.
        """
        if self._push_text is None:
            raise RuntimeError("this stream was opened with its whole text; open_stream() without text to push")
        self._push_text(fragment)

    def end_input(self) -> None:
        """No more text: the stream speaks what it has and ends. Idempotent."""
        if self._end_input is None:
            raise RuntimeError("this stream was opened with its whole text; open_stream() without text to push")
        self._end_input()

    @property
    def state(self) -> StreamState:
        return self._channel.state

    # ---- consumer side ----------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop now: nothing more is yielded; the engine frees the stream at its next step. Idempotent and
        safe from any thread or task."""
        _cancel_channel(self._channel, self._on_cancel)

    def close(self) -> None:
        """Release everything (cancels if still open). Idempotent."""
        self.cancel()

    async def aclose(self) -> None:
        self.cancel()

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self

    async def __anext__(self) -> AudioChunk:
        if self._channel.state is not StreamState.OPEN:
            raise StopAsyncIteration
        return self._unwrap(await self._channel.aget(), StopAsyncIteration)

    def __iter__(self) -> Iterator[AudioChunk]:
        return self

    def __next__(self) -> AudioChunk:
        if self._channel.state is not StreamState.OPEN:
            raise StopIteration
        return self._unwrap(self._channel.get(), StopIteration)

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def _unwrap(self, item: object, stop: type[Exception]) -> AudioChunk:
        ch = self._channel
        if item is _END or ch.state is StreamState.CANCELLED:
            raise stop
        if isinstance(item, BaseException):
            ch.state = StreamState.FAILED
            raise item
        assert isinstance(item, AudioChunk)
        if item.is_last:
            ch.state = StreamState.FINISHED
        return item


def _cancel_channel(channel: Channel, on_cancel: Callable[[], None]) -> None:
    if channel.cancel():
        on_cancel()
