"""Incremental text, tokenized off the engine thread.

Each incremental stream has a `PendingText`: `push`/`end` (any thread, never blocking on the engine) queue
fragments; one `TextFeed` worker thread per engine tokenizes them (work proportional to the new text, see
`text/incremental.py`) and wakes the engine, which `take`s the newly committed ids. So a client sending
thousands of tiny fragments costs the engine thread nothing but the projection of its new tokens.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInputError
from ..text.incremental import IncrementalTokenizer

__all__ = ["PendingText", "TextFeed", "TextNews"]

log = logging.getLogger("qwen3tts_realtime.engine")


class TextNews:
    """What `PendingText.take` hands the engine: new committed ids and where the text stands."""

    __slots__ = ("ids", "complete", "clause_ended", "error")

    def __init__(self, ids: list[int], complete: bool, clause_ended: bool, error: BaseException | None) -> None:
        self.ids, self.complete, self.clause_ended, self.error = ids, complete, clause_ended, error


class PendingText:
    """One stream's text on its way from `push_text` to the engine."""

    def __init__(self, tokenizer: Any, feed: TextFeed) -> None:
        self._tok = IncrementalTokenizer(tokenizer)
        self._feed = feed
        self._lock = threading.Lock()
        self._fragments: list[str] = []
        self._end_requested = False
        self._scheduled = False
        self._ids: list[int] = []  # committed, not yet taken
        self._complete = False
        self._error: BaseException | None = None

    @property
    def tokenized_chars(self) -> int:
        """Characters handed to the tokenizer so far (proportional to the text, however it was split)."""
        return self._tok.tokenized_chars

    def push(self, fragment: str) -> None:
        if not isinstance(fragment, str):
            raise InvalidInputError(f"push_text() takes str fragments, got {type(fragment).__name__}")
        try:
            fragment.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError(
                f"push_text() got text that is not valid Unicode ({e.reason} at index {e.start}, e.g. a lone "
                "surrogate); send UTF-8 text"
            ) from None
        with self._lock:
            if self._end_requested:
                raise InvalidInputError("push_text() after end_input(): the stream's text is complete")
            self._fragments.append(fragment)
            self._schedule()

    def end(self) -> None:
        with self._lock:
            self._end_requested = True
            self._schedule()

    def has_news(self) -> bool:
        with self._lock:
            return bool(self._ids) or self._error is not None or self._complete

    def take(self) -> TextNews:
        """The ids committed since the last `take` (engine thread)."""
        with self._lock:
            ids, self._ids = self._ids, []
            return TextNews(ids, self._complete, self._tok.clause_ended, self._error)

    def _schedule(self) -> None:  # under the lock
        if not self._scheduled:
            self._scheduled = True
            self._feed.put(self)

    def work(self) -> None:
        """Tokenize what is queued (worker thread)."""
        while True:
            with self._lock:
                fragments, self._fragments = self._fragments, []
                closing = self._end_requested and not self._tok.ended
                if not fragments and not closing:
                    self._scheduled = False
                    return
            try:
                ids: list[int] = []
                for fragment in fragments:
                    ids += self._tok.push(fragment)
                if closing:
                    ids += self._tok.end()
                error = None
            except Exception as e:  # noqa: BLE001 - delivered to the stream
                log.debug("tokenizing a stream's text failed: %r", e)
                ids, error = [], e
            with self._lock:
                self._ids += ids
                self._complete = self._tok.ended
                self._error = self._error or error


class TextFeed:
    """The tokenizer thread of one engine."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._queue: queue.SimpleQueue[PendingText | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.tokenized_chars = 0  # characters handed to the tokenizer, all streams

    def start(self) -> None:
        """Start the thread (idempotent; the engine starts it with its own)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qwen3tts-text", daemon=True)
                self._thread.start()

    def put(self, pending: PendingText) -> None:
        self.start()
        self._queue.put(pending)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            if thread is not threading.current_thread():
                thread.join()

    def _run(self) -> None:
        while True:
            pending = self._queue.get()
            if pending is None:
                return
            before = pending.tokenized_chars
            pending.work()
            self.tokenized_chars += pending.tokenized_chars - before
            self._wake()
