"""One thread for all of the server's torch work, requests before background work.

Why one thread: torch's CPU kernels run on OpenMP, and libgomp keeps a team of threads for each
thread that starts parallel work. Once a process manages more OpenMP threads than it has CPUs (a
second request thread with its own team on a 2-vCPU machine is enough), libgomp stops spinning
between parallel regions, so each of the hundreds of regions of one forward pass pays a sleep and a
wake-up (GOMP's throttled spin count); docs/measurements.md's latency section has the measured cost, from
bench/app_latency.py. Gradio runs handlers on a pool of threads, so the app sends each handler
that runs a model here.

- Worker.run(fn, ...) runs fn on the worker's thread and returns its result or raises its exception
  in the caller; called from the worker's own thread it just calls fn (no deadlock).
- Worker.wrap(fn) is fn, sent to the worker (same signature: Gradio reads it for the API).
- Worker.submit(fn, ..., priority=BACKGROUND) queues work that waits for every queued request:
  jobs run by priority (REQUEST before BACKGROUND), then in the order they came. A running job is
  never interrupted, so a request waits for at most one background job.
The thread starts on the first job (nothing runs when a Worker is made) and is a daemon; a forked
child starts its own. tests/test_worker.py holds the order, the one thread, the exceptions, the
re-entrancy and the fork.
"""
from __future__ import annotations

import functools
import itertools
import os
import queue
import threading
from concurrent.futures import Future

REQUEST, BACKGROUND = 0, 1


class Worker:
    def __init__(self, name: str = "resnet-lab-compute"):
        self.name = name
        self._order = itertools.count()
        self._fresh()

    def _fresh(self):
        """A new queue and no thread yet: at creation, and in a forked child (which inherits the
        objects but not the thread; e.g. a ZeroGPU call runs in one)."""
        self._pid = os.getpid()
        self._jobs: queue.PriorityQueue = queue.PriorityQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, fn, *args, priority: int = REQUEST, **kwargs) -> Future:
        """Queue fn(*args, **kwargs); the Future holds its result or exception."""
        if self._pid != os.getpid():
            self._fresh()
        future: Future = Future()
        self._jobs.put((priority, next(self._order), future, fn, args, kwargs))
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        return future

    def run(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) on the worker's thread, as a request; its result, or its exception raised."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def wrap(self, fn):
        """fn, run on the worker's thread as a request."""
        @functools.wraps(fn)
        def on_worker(*args, **kwargs):
            return self.run(fn, *args, **kwargs)
        return on_worker

    def _loop(self):
        while True:
            _, _, future, fn, args, kwargs = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:  # handed to the caller, never lost with the thread
                future.set_exception(e)
