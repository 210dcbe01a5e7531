"""The one event loop of the query service process, on a daemon thread.

Every asyncio server of the process runs on it (grpc.aio objects belong to the loop they
were made on; the HTTP/JSON gateway and the probe port share it), while the rest of the
process (the poller, `serve`'s signal wait, the CLI, tests) stays synchronous and calls in
with `on_loop`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None
_loop_lock = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on a daemon thread, shared by every server it creates
    (grpc.aio objects belong to the loop they were made on): the rest of the process
    (the poller, the probes' HTTP server, `serve`'s signal wait, tests) stays synchronous."""
    global _loop, _loop_thread
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _loop_thread = threading.Thread(target=_loop.run_forever, name="grpc-aio", daemon=True)
            _loop_thread.start()
        return _loop


def on_loop(coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
    """Run a coroutine on the event loop from another thread and wait for its result."""
    if threading.current_thread() is _loop_thread:
        raise RuntimeError("on_loop called from the event loop itself")
    return asyncio.run_coroutine_threadsafe(coro, event_loop()).result(timeout)
