"""Where independent units of work run: a local process pool (``--engine local``) or Ray (``--engine ray``).

A *unit* is one picklable call ``fn(*args)`` whose result does not depend on the others: the features
of one audio file (``soundaq features``), and, the same way, one (model, seed, rotation, variant) run of
a grid. :func:`open_engine` connects (or starts nothing, for the local pool) *before* a command writes
anything, so that an unreachable ``--address`` costs one line and no half-written output;
:meth:`Engine.run` then yields ``(index, result)`` as units finish, in completion order.

Ray (https://docs.ray.io) is an optional extra (``pip install 'soundaq[ray]'``). Each unit is one Ray
task asking for one CPU (and ``gpus`` GPUs when asked); Ray retries a task whose worker process or node
died (``max_retries``, Ray's own retry: soundaq has no retry loop of its own). A unit that still fails
is yielded as a :class:`UnitFailed` naming why, so the batch contract holds: the other units complete.
Without ``--address`` Ray starts a private one-machine instance on the loopback; with it, the driver
joins the running cluster (``host:port`` of its head, or ``auto``). See docs/scaling.md.
"""
from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from soundaq.base.errors import UserError, first_line, one_line
from soundaq.base.parallel import WorkerStart, one_thread_each, stop_pool

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install 'soundaq[ray]'"
#: Ray's switch that, set to 0, makes every node and driver use 127.0.0.1 as its address (docs/scaling.md).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Retries of a unit whose worker process or node died (Ray's ``max_retries`` of a task).
MAX_RETRIES = 3


class EngineError(UserError):
    """The engine cannot run: Ray missing, no cluster at ``--address``, fewer GPUs than asked."""


@dataclass(frozen=True)
class UnitFailed:
    """A unit that raised, or whose worker died more often than Ray retries: ``why`` is one line."""

    why: str


def _loopback_host(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at ``host:port`` (Ray itself retries for a minute)."""
    if "://" in address:
        raise EngineError(f"--address {address}: soundaq joins a cluster as a driver on one of its nodes, not "
                          "through Ray Client (ray://); fix: run soundaq on a node of the cluster and pass the "
                          "head's HOST:PORT (e.g. --address 10.0.0.5:6379), or --address auto")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EngineError(f"--address {address}: expected HOST:PORT of a Ray head node (as `ray start --head` "
                          "prints it) or auto; fix: pass e.g. --address 10.0.0.5:6379")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise EngineError(f"--address {address}: no Ray cluster answers there ({err.strerror or err}); fix: "
                          "start one with `ray start --head` and pass the address it prints, or use --engine local"
                          ) from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError(f"--engine ray needs Ray, which is not installed; fix: {RAY_INSTALL}") from None
    return ray


def _ray_unit(fn: Callable, args: tuple) -> Any:
    """Ray task body: one BLAS thread per worker, as the local pool's workers run (soundaq.base.parallel)."""
    one_thread_each()
    return fn(*args)


@dataclass
class Engine:
    """An open engine (from :func:`open_engine`); use as a context manager so Ray is left on exit."""

    name: str
    workers: int = 1
    address: str | None = None
    gpus: float = 0
    max_retries: int = MAX_RETRIES
    _ray: Any = field(default=None, repr=False)

    def describe(self) -> dict:
        """What a manifest records about where the units ran."""
        out: dict[str, Any] = {"name": self.name}
        if self.name == "ray":
            out.update(address=self.address or "local", ray=self._ray.__version__ if self._ray else None,
                       cpus=self._ray.cluster_resources().get("CPU") if self._ray else None)
        else:
            out["workers"] = self.workers
        return out

    def run(self, fn: Callable, units: Sequence[tuple], *, start_method: str | None = None,
            initializer: Callable[[], None] | None = one_thread_each) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(*units[index]))`` as units finish; a unit that raised or whose worker died
        (after Ray's retries) yields ``(index, UnitFailed(why))``. ``fn`` must be importable by name.

        ``start_method`` and ``initializer`` are the local pool's (multiprocessing's start method, e.g.
        ``spawn`` for units that use torch; the function each worker runs first, default one BLAS thread);
        Ray's workers always run with one BLAS thread (each task holds one CPU).
        """
        if self.name == "ray":
            yield from self._run_ray(fn, units)
        elif self.workers == 1 or len(units) <= 1:
            for i, args in enumerate(units):
                try:
                    yield i, fn(*args)
                except Exception as err:  # noqa: BLE001 - reported as the unit's failure, the batch goes on
                    yield i, UnitFailed(one_line(err))
        else:
            import multiprocessing as mp

            context = mp.get_context(start_method) if start_method else None
            pool = ProcessPoolExecutor(max_workers=min(self.workers, len(units)), mp_context=context,
                                       initializer=WorkerStart(initializer))   # workers end with this process
            try:
                futures = {pool.submit(fn, *args): i for i, args in enumerate(units)}
                for fut in as_completed(futures):
                    try:
                        yield futures[fut], fut.result()
                    except BrokenProcessPool as err:  # a worker died (killed, out of memory): report, keep going
                        yield futures[fut], UnitFailed(f"worker process failed ({type(err).__name__})")
                    except Exception as err:  # noqa: BLE001 - the unit raised: its failure, the batch goes on
                        yield futures[fut], UnitFailed(one_line(err))
            except BaseException:      # Ctrl-C, or the caller stopped iterating: no new unit starts
                stop_pool(pool)
                raise
            pool.shutdown(wait=True)

    def _run_ray(self, fn: Callable, units: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        task = ray.remote(num_cpus=1, num_gpus=self.gpus, max_retries=self.max_retries)(_ray_unit)
        fn_ref = ray.put(fn)
        pending = {task.remote(fn_ref, tuple(args)): i for i, args in enumerate(units)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    yield index, ray.get(ref)
                except ray.exceptions.RayTaskError as err:   # the unit itself raised
                    cause = err.cause if getattr(err, "cause", None) is not None else err
                    yield index, UnitFailed(one_line(cause))
                except ray.exceptions.RayError as err:       # worker or node died more than max_retries times
                    yield index, UnitFailed(f"Ray worker failed {self.max_retries + 1} times ({type(err).__name__}, "
                                            "see the Ray logs of its node)")

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        if self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()


def _ray_init(ray, address: str | None, workers: int) -> None:
    import logging

    # Ray's own INFO/WARNING lines (connecting, token authentication) would break the one-line contract
    common: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
                                  configure_logging=True)
    if address is None:   # a private one-machine Ray: nothing but this process joins it, keep it on the loopback
        ray.init(num_cpus=workers, _node_ip_address="127.0.0.1", **common)
        return
    if _loopback_host(address):
        common["_node_ip_address"] = "127.0.0.1"
    common.pop("include_dashboard")
    ray.init(address=address, **common)


def open_engine(name: str = "local", *, workers: int = 1, address: str | None = None,
                gpus: float = 0) -> Engine:
    """Connect the engine before anything is written.

    Args:
        name: ``local`` (a process pool of ``workers`` on this machine) or ``ray``.
        workers: local worker processes; with Ray and no ``address``, the CPUs of the private instance.
        address: Ray only: ``HOST:PORT`` of a running cluster's head (``ray start --head`` prints it) or
            ``auto`` (``$RAY_ADDRESS``, else the cluster started on this machine); None: start a private
            one-machine Ray.
        gpus: GPUs each unit asks Ray for (0: none).

    Raises:
        EngineError: unknown engine, ``address`` without Ray, Ray not installed, nothing answering at
            ``address``, or a cluster with fewer GPUs than one unit asks for (one line with the fix each).
    """
    if name not in ENGINES:
        raise EngineError(f"--engine {name}: unknown; fix: use one of {', '.join(ENGINES)}")
    if name == "local":
        if address is not None:
            raise EngineError("--address is for --engine ray; fix: add --engine ray or leave out --address")
        return Engine("local", workers=workers)
    if address is not None and address != "auto":
        _check_reachable(address)
    if address is None:
        os.environ.setdefault(LOOPBACK_ENV, "0")   # read when Ray is first imported
        if "RAY_AUTH_MODE" not in os.environ and "ray" not in sys.modules:
            # a token only this process knows, none saved in ~/.ray (Ray reads it once per process)
            os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    ray = _import_ray()
    try:
        _ray_init(ray, address, workers)
    except Exception as err:  # noqa: BLE001 - Ray's connection, authentication and start-up errors: one line
        raise EngineError(f"--address {address or '(private Ray)'}: Ray could not connect ({first_line(err)}); "
                          "fix: check the address `ray status` prints on the head node, or use --engine local"
                          ) from None
    engine = Engine("ray", workers=workers, address=address, gpus=gpus, _ray=ray)
    have = ray.cluster_resources().get("GPU", 0)
    if gpus and have < gpus:
        ray.shutdown()
        raise EngineError(f"each unit asks for {gpus:g} GPU but the Ray cluster has {have:g}; fix: start the "
                          "nodes on GPU machines (`ray start --num-gpus N`) or ask for none")
    return engine
