"""Serve an ASGI app with uvicorn in a background thread on a localhost port (free, or the one given), for
tests that talk to real servers over real sockets."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn


def serve_in_thread(app, ready_url: str, port: int = 0, **config) -> tuple[int, uvicorn.Server, threading.Thread]:
    """Start `app` and wait until GET `ready_url` (a path, e.g. "/ready") answers 200. Returns the port, the
    server (set `should_exit` to stop it) and its thread. `config` goes to `uvicorn.Config`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_url}", timeout=5).status_code == 200:
                return port, server, thread
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the server on port {port} did not become ready"
        time.sleep(0.02)
