"""Running several streams of one engine at the same time, as concurrent callers would."""

from __future__ import annotations

import threading
import time


def stream_concurrently(tts, requests: list[dict], *, chunk_frames=(1, 3), stagger_s: float = 0.0) -> list[list]:
    """Each request (keyword arguments of `open_stream`) streamed from its own thread, started `stagger_s` apart
    (so later ones join a running batch); returns each stream's chunks."""
    results: list = [None] * len(requests)

    def run(i: int) -> None:
        time.sleep(stagger_s * i)
        with tts.open_stream(**requests[i], chunk_frames=chunk_frames) as s:
            results[i] = list(s)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
