"""Executors: where cells are computed (this process, local worker processes, a Ray cluster).

:func:`execute` hands a list of :class:`~nonvon.cells.Cell` to one executor and files each
outcome as it arrives: a finished cell into the cache folder (``<key>.json`` and its
parameters, atomically), a failed one into the failures folder with its traceback. It is
the one runner behind ``compare``, ``sweep`` and the pytest helpers.

- ``inline``: in this process, in the order given, with the task and simulator the planner
  built (nothing is rebuilt).
- ``local``: long-lived worker processes (fresh interpreters, neither forked nor
  multiprocessing-spawned, so a driver script needs no ``if __name__ == "__main__"``
  guard); jobs and outcomes cross as JSON, a worker that dies fails only its cell and a
  fresh one takes its place.
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
    TRAINED,
    Cell,
    CellOutcome,
    failure,
    run_cell,
    save_cell,
    torch_threads,
)
from nonvon.context import RunContext
from nonvon.errors import ConfigError, NonvonError
from nonvon.result import Result

__all__ = ["EXECUTORS", "Executed", "WorkersDiedError", "execute", "folder_lock",
           "require_ray"]

EXECUTORS = ("local", "ray", "inline")


@dataclasses.dataclass
class Executed:
    """What :func:`execute` did: the results it computed (by cell key), and counts
    (``trained``: fit-only cells, whose weights went to the training memo)."""

    results: dict[str, Result]
    computed: int
    failed: int
    trained: int = 0


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
    computed = failed = trained = 0
    with progress_bar(progress and bool(cells)) as bar, contextlib.closing(stream):
        job = bar.add_task(name, total=len(cells), status="")
        for outcome in stream:
            cell = by_key[outcome.key]
            if outcome.status == TRAINED:
                trained += 1
                say(f"trained {cell.label} (done {computed + failed + trained}/{len(cells)}); "
                    "it is evaluated later, alone")
            elif outcome.status == DONE:
                if cache is not None:
                    save_cell(cache / f"{cell.key}.json", outcome.result, outcome.state,
                              outcome.stored_state or {"file": None, "reason": "not kept"})
                if failures is not None:
                    (failures / f"{cell.key}.json").unlink(missing_ok=True)
                results[cell.key] = outcome.result
                computed += 1
                if not progress and log is not None:  # a headless run shows its pace
                    r = outcome.result
                    say(f"done {computed + failed + trained}/{len(cells)} {cell.label}: "
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
    return Executed(results, computed, failed, trained)


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


_READY = b"ready"
_WORKER_MAIN = "from nonvon.executors import _worker_main; _worker_main()"


def _worker_main() -> None:
    """Entry of a local worker process (``python -c``): its pipes are the file descriptors
    in ``sys.argv[1:3]``, its torch thread count ``sys.argv[3]`` (JSON)."""
    import sys
    from multiprocessing.connection import Connection

    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    for fd in (fd_in, fd_out):  # not passed on to anything this worker starts
        os.set_inheritable(fd, False)
    _worker_loop(Connection(fd_in, writable=False), Connection(fd_out, readable=False),
                 json.loads(sys.argv[3]))


def _worker_loop(jobs, outcomes, threads: int | None) -> None:
    """Body of a local worker process: JSON jobs in, JSON outcomes out, until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    try:
        with torch_threads(threads):
            outcomes.send_bytes(_READY)
            while True:
                raw = jobs.recv_bytes()
                if not raw:
                    return
                outcomes.send_bytes(_run_message(raw, None).encode())
    except (EOFError, OSError):  # the driver is gone: stop quietly
        return


class WorkersDiedError(NonvonError, RuntimeError):
    """Local worker processes die before they can take a cell: nothing can run."""


class _Worker:
    """A worker process started with ``python -c`` (not multiprocessing's spawn, which
    re-imports the driver's ``__main__`` in every worker: a script that calls
    :func:`~nonvon.sweep.run_sweep` at top level would run again in each). Jobs go down one
    pipe and outcomes come up another, as JSON bytes; its stderr goes to a temporary file,
    whose tail becomes the traceback if it dies."""

    def __init__(self, threads: int | None):
        import subprocess
        import sys
        import tempfile
        from multiprocessing.connection import Connection

        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
               # JAX (the VQC) would otherwise take most of a GPU's memory in each worker
               "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get(
                   "XLA_PYTHON_CLIENT_PREALLOCATE", "false")}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, str(down_r), str(up_w), json.dumps(threads)],
                pass_fds=(down_r, up_w), stdin=subprocess.DEVNULL, stdout=self.stderr,
                stderr=self.stderr, env=env)
        finally:
            os.close(down_r)
            os.close(up_w)
        self.jobs = Connection(down_w, readable=False)
        self.outcomes = Connection(up_r, writable=False)
        self.ready = False
        self.cell: Cell | None = None

    def send(self, cell: Cell, context: RunContext) -> None:
        self.cell = cell
        with contextlib.suppress(OSError):  # a dead worker: its EOF says so next
            self.jobs.send_bytes(_message(cell, context))

    def died(self) -> tuple[int | None, str]:
        """Reap the dead worker: its exit code and the end of what it wrote to stderr."""
        import subprocess

        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.stderr.seek(0)
        tail = self.stderr.read()[-4000:].decode("utf-8", "replace")
        self.close()
        return code, tail

    def stop(self, wait_s: float) -> None:
        import subprocess

        with contextlib.suppress(OSError, ValueError):
            self.jobs.send_bytes(b"")
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.close()

    def close(self) -> None:
        for c in (self.jobs, self.outcomes):
            with contextlib.suppress(OSError):
                c.close()
        self.stderr.close()


def _run_local(cells: list[Cell], n_workers: int, threads, context: RunContext
               ) -> Iterator[CellOutcome]:
    """A pool of ``n_workers`` long-lived processes.

    Unlike ``concurrent.futures``, a worker that dies (out of memory, a crash in
    native code) fails only the cell it was running; a fresh worker takes its place.
    Workers that die before they are ready for a cell (more of them than the pool holds)
    stop the run with :class:`WorkersDiedError`: that is the environment, not a cell.
    Jobs and outcomes travel as JSON bytes, not pickles.
    """
    from multiprocessing.connection import wait

    pending = list(reversed(cells))
    workers: list[_Worker] = []
    startup_deaths: list[tuple[int | None, str]] = []
    try:
        workers = [_Worker(threads) for _ in range(min(n_workers, len(pending)))]
        while workers:
            ready = set(wait([w.outcomes for w in workers]))
            for w in list(workers):
                if w.outcomes not in ready:
                    continue
                try:
                    raw = w.outcomes.recv_bytes()
                except (EOFError, OSError):
                    code, tail = w.died()
                    workers.remove(w)
                    if w.cell is None:
                        startup_deaths.append((code, tail))
                        if len(startup_deaths) > n_workers:
                            raise _mass_death(startup_deaths, len(pending)) from None
                    else:
                        yield failure(w.cell.key, "WorkerDied",
                                      f"the worker process died (exit code {code}) while "
                                      f"computing {w.cell.label}",
                                      "a crash in native code or the out-of-memory killer; "
                                      "rerun with --retry-failed, or fewer --jobs", tail)
                    if pending:  # a fresh worker takes the dead one's place
                        workers.append(_Worker(threads))
                    continue
                if not w.ready:  # its first message: ready for a cell
                    w.ready = True
                else:
                    w.cell = None
                    yield CellOutcome.from_json(raw)
                if pending:
                    w.send(pending.pop(), context)
                else:
                    w.stop(2)
                    workers.remove(w)
    finally:
        for w in workers:
            w.stop(2 if w.cell is None else 0.1)


def _mass_death(deaths: list[tuple[int | None, str]], left: int) -> WorkersDiedError:
    codes = sorted({str(c) for c, _ in deaths})
    tail = next((t for _, t in reversed(deaths) if t.strip()), "").strip()
    last = "\n".join(tail.splitlines()[-12:]) if tail else "(it wrote nothing to stderr)"
    return WorkersDiedError(
        f"{len(deaths)} worker processes died before they could take a cell (exit code(s) "
        f"{', '.join(codes)}); {left} cell(s) not run. The last one wrote:\n{last}",
        "this is the environment, not a cell: check that `python -c 'import nonvon'` works "
        "with this Python, and memory; or run with executor='inline' (--executor inline) to "
        "see the error in this process")


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
