"""Executors: where cells are computed (this process, local worker processes, a Ray cluster).

:func:`execute` hands a list of :class:`~nonvon.cells.Cell` to one executor and files each
outcome as it arrives: a finished cell into the cache folder (``<key>.json`` and its
parameters, atomically), a failed one into the failures folder with its traceback. It is
the one runner behind ``compare``, ``sweep`` and the pytest helpers.

- ``inline``: in this process, in the order given, with the task and simulator the planner
  built (nothing is rebuilt).
- ``local``: long-lived worker processes (spawned, not forked); jobs and outcomes cross as
  JSON, a worker that dies fails only its cell and a fresh one takes its place.
- ``ray``: each cell a Ray task, on a local instance or a cluster (``address``).

The parallel executors start the costliest cells first (each simulator's ``cost_hint``), so
that no long cell starts last while the other workers idle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json
from nonvon.cells import (
    DONE,
    Cell,
    CellOutcome,
    failure,
    run_cell,
    save_cell,
    torch_threads,
)
from nonvon.context import RunContext
from nonvon.errors import ConfigError
from nonvon.result import Result

__all__ = ["EXECUTORS", "Executed", "execute", "folder_lock", "require_ray"]

EXECUTORS = ("local", "ray", "inline")


@dataclasses.dataclass
class Executed:
    """What :func:`execute` did: the results it computed (by cell key), and counts."""

    results: dict[str, Result]
    computed: int
    failed: int


@contextlib.contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """One run writes into a results folder at a time; the lock dies with its process."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another nonvon sweep is writing to {out}",
                              "wait for it to finish, or give this one another --out") from None
        yield
    finally:
        os.close(fd)


def execute(cells: Sequence[Cell], *, cache: Path | None, failures: Path | None = None,
            executor: str = "inline", jobs: int | None = None, threads: int | None = 1,
            address: str | None = None, reg=None, built: Mapping[str, tuple[Any, Any]] | None = None,
            context: RunContext | None = None, progress: bool = False, fit_progress: bool = False,
            catch: bool = True, log: Callable[[str], None] | None = print,
            name: str = "cells") -> Executed:
    """Compute ``cells`` with ``executor`` and file each outcome as it arrives.

    Args:
        cells: what to compute.
        cache: folder for finished cells (``None``: keep results in memory only).
        failures: folder for failure records (``<key>.json`` with the traceback); a success
            removes its cell's record. ``None``: failures are only counted and logged.
        executor: ``"inline"``, ``"local"`` or ``"ray"``.
        jobs: parallel cells (local: worker processes, default the CPU count; ray: CPUs of
            the local instance it starts).
        threads: torch intra-op threads per cell (``None``: torch's default).
        address: Ray cluster address (``executor="ray"``).
        reg: registry (inline: to build cells without ``built``; workers discover their own).
        built: per cell key, the ``(task, simulator)`` the planner built (inline only).
        context: the run (its training memo); the executor sets ``concurrent_cells``.
        progress: a progress bar over the cells; without one each finished cell is logged.
        fit_progress: progress bars of each fit (inline only).
        catch: record a failing cell and go on (otherwise, inline, the exception propagates).
        log: where messages go (``None``: nowhere).
        name: the progress bar's label.
    """
    from nonvon.progress import progress_bar

    context = context or RunContext()
    cells = list(cells)
    if executor != "inline":  # stable: equal costs keep the planned order
        cells.sort(key=lambda c: -c.cost)
    by_key = {c.key: c for c in cells}
    if executor == "inline":
        stream = _run_inline(cells, built or {}, reg, threads, context, fit_progress, catch)
    elif executor == "local":
        n = jobs or os.cpu_count() or 1
        ctx = dataclasses.replace(context, concurrent_cells=max(1, min(n, len(cells))))
        stream = _run_local(cells, n, threads, ctx)
    elif executor == "ray":
        stream = _run_ray(cells, jobs or os.cpu_count(), threads, address, context)
    else:
        raise ConfigError(f"unknown executor {executor!r}", f"choose one of: {', '.join(EXECUTORS)}")
    say = log or (lambda m: None)
    results: dict[str, Result] = {}
    computed = failed = 0
    with progress_bar(progress and bool(cells)) as bar, contextlib.closing(stream):
        job = bar.add_task(name, total=len(cells), status="")
        for outcome in stream:
            cell = by_key[outcome.key]
            if outcome.status == DONE:
                if cache is not None:
                    save_cell(cache / f"{cell.key}.json", outcome.result, outcome.state,
                              outcome.stored_state or {"file": None, "reason": "not kept"})
                if failures is not None:
                    (failures / f"{cell.key}.json").unlink(missing_ok=True)
                results[cell.key] = outcome.result
                computed += 1
                if not progress and log is not None:  # a headless run shows its pace
                    r = outcome.result
                    say(f"done {computed + failed}/{len(cells)} {cell.label}: "
                        f"{r.accuracy:.2%}, fit {r.fit_wall_s or 0:.0f} s")
            else:
                failed += 1
                f = outcome.failure or {}
                where = ""
                if failures is not None:
                    path = failures / f"{cell.key}.json"
                    atomic_write_json(path, {"key": cell.key, "status": outcome.status, **f,
                                             "cell": cell.job()})
                    where = f" (traceback in {path})"
                say(f"FAILED {cell.label}: {f.get('error')}: {f.get('message')}{where}")
            bar.update(job, advance=1, status=f"{cell.label}: {outcome.status}")
    return Executed(results, computed, failed)


# -- the executors: each yields a CellOutcome as each cell finishes -------------------------
def _run_inline(cells, built, reg, threads, context, fit_progress, catch) -> Iterator[CellOutcome]:
    for cell in cells:
        task, sim = built.get(cell.key, (None, None))
        yield run_cell(cell, reg=reg, task=task, sim=sim, threads=threads, context=context,
                       progress=fit_progress, catch=catch)


def _message(cell: Cell, context: RunContext) -> bytes:
    return json.dumps({"cell": cell.job(), "context": context.to_json()}).encode()


def _run_message(raw: bytes | str, threads: int | None) -> str:
    """Compute the cell a driver sent; the outcome as JSON."""
    msg = json.loads(raw)
    return run_cell(Cell.from_job(msg["cell"]), threads=threads,
                    context=RunContext.from_json(msg["context"])).to_json()


def _worker_loop(conn, threads: int | None) -> None:
    """Body of a local worker process: JSON jobs in, JSON outcomes out, until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    # This process is nonvon's own: JAX (the VQC) would otherwise take most of a GPU's memory
    # in each worker at start, leaving none to the others.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        with torch_threads(threads):
            while True:
                raw = conn.recv_bytes()
                if not raw:
                    return
                conn.send_bytes(_run_message(raw, None).encode())
    except (EOFError, OSError):  # the driver is gone: stop quietly
        return


@dataclasses.dataclass
class _Worker:
    proc: Any
    conn: Any
    cell: Cell | None = None


def _run_local(cells: list[Cell], n_workers: int, threads, context: RunContext
               ) -> Iterator[CellOutcome]:
    """A pool of ``n_workers`` long-lived processes (spawned: no fork of a threaded parent).

    Unlike ``concurrent.futures``, a worker that dies (out of memory, a crash in
    native code) fails only the cell it was running; a fresh worker takes its place.
    Jobs and outcomes travel as JSON bytes, not pickles.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    pending = list(reversed(cells))
    workers: list[_Worker] = []

    def start() -> _Worker:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_loop, args=(child, threads), name="nonvon-worker")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def assign(w: _Worker) -> None:
        w.cell = pending.pop()
        w.conn.send_bytes(_message(w.cell, context))

    try:
        for _ in range(min(n_workers, len(pending))):
            workers.append(start())
        for w in workers:
            assign(w)
        while any(w.cell is not None for w in workers):
            busy = [w for w in workers if w.cell is not None]
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                try:
                    outcome = CellOutcome.from_json(w.conn.recv_bytes())
                except (EOFError, OSError):
                    w.proc.join(5)
                    outcome = failure(w.cell.key, "WorkerDied",
                                      f"the worker process died (exit code {w.proc.exitcode}) "
                                      f"while computing {w.cell.label}",
                                      "a crash in native code or the out-of-memory killer; "
                                      "rerun with --retry-failed, or fewer --jobs", "")
                    w.conn.close()
                    if pending:  # a fresh worker takes the dead one's place
                        fresh = start()
                        w.proc, w.conn = fresh.proc, fresh.conn
                w.cell = None
                yield outcome
                if pending:
                    assign(w)
    finally:
        for w in workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send_bytes(b"")
        for w in workers:
            w.proc.join(2 if w.cell is None else 0.1)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(5)
            w.conn.close()


def _ray_cell(message: str, threads: int | None) -> str:
    """Body of a Ray task (module level, so Ray ships it by reference)."""
    return _run_message(message, threads)


def require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed",
                          "pip install 'nonvon[ray]', or use --executor local") from None
    return ray


def _run_ray(cells: list[Cell], n_cpus: int | None, threads, address: str | None,
             context: RunContext) -> Iterator[CellOutcome]:
    """Each cell a Ray task; outcomes come back as JSON strings as tasks finish.

    With ``address`` (``"auto"``, ``"ray://host:10001"``, ...) the run joins that
    cluster, whose nodes need nonvon (and the data) installed; without it a local
    Ray instance with ``n_cpus`` CPUs is started and stopped again.
    """
    import logging

    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address is None:
            kwargs["num_cpus"] = n_cpus
        ray.init(address=address, **kwargs)
    try:
        remote = ray.remote(num_cpus=1)(_ray_cell)
        refs = {remote.remote(_message(c, context).decode(), threads): c for c in cells}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                cell = refs.pop(ref)
                try:
                    yield CellOutcome.from_json(ray.get(ref))
                except ray.exceptions.RayError as e:
                    yield failure(cell.key, type(e).__name__,
                                  f"Ray could not run {cell.label}: "
                                  f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                                  "check the cluster's logs; rerun with --retry-failed", str(e))
    finally:
        if started:
            ray.shutdown()
