"""Worker processes that share the cores instead of fighting over them."""
from __future__ import annotations


def one_thread_each() -> None:
    """``ProcessPoolExecutor`` initializer: this worker's BLAS/OpenMP pools get one thread.

    With one worker per core, a pool of several threads per worker only adds switching: measured on
    the log-mel of a 30-s clip, 0.055 s CPU with the default two threads against 0.039 s with one
    (benchmark/perf/features_bench.py). Uses threadpoolctl (the pools numpy, scipy and sklearn load).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
