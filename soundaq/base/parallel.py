"""Worker processes that share the cores instead of fighting over them."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor


def one_thread_each() -> None:
    """``ProcessPoolExecutor`` initializer: this worker's BLAS/OpenMP pools get one thread.

    With one worker per core, a pool of several threads per worker only adds switching: measured on
    the log-mel of a 30-s clip, 0.055 s CPU with the default two threads against 0.039 s with one
    (benchmark/perf/features_bench.py). Uses threadpoolctl (the pools numpy, scipy and sklearn load).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """Start a daemon thread that ends this process once ``parent`` is no longer its parent."""
    import os
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent:     # the parent died (kill -9): re-parented to init or a subreaper
                os._exit(1)

    threading.Thread(target=watch, name="soundaq-parent-watch", daemon=True).start()


class WorkerStart:
    """Picklable ``ProcessPoolExecutor`` initializer: the worker exits when the process that made the
    pool dies, then runs ``then`` (e.g. :func:`one_thread_each`).

    A pool's workers outlive a parent killed with SIGKILL (nothing runs in the parent to stop them),
    and would go on writing into the run folder the user is about to resume from; the watch thread
    checks ``os.getppid()`` twice a second and ends the worker with ``os._exit(1)`` (its writes are
    atomic, so nothing half-written is left).
    """

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        import os

        self.parent = os.getpid()
        self.then = then

    def __call__(self) -> None:
        """Run in the worker before its first unit."""
        _exit_with_parent(self.parent)
        if self.then is not None:
            self.then()


def stop_pool(pool: Executor) -> None:
    """End an interrupted pool at once: pending units are cancelled and running workers terminated.

    ``ProcessPoolExecutor``'s own exit waits for every submitted unit, so a Ctrl-C went on starting
    new units for minutes; the workers' writes are atomic, so terminating them leaves nothing
    half-written.
    """
    # ProcessPoolExecutor's workers (no public API in 3.11); read before shutdown, which drops the reference
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
