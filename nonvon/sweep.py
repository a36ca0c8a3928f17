"""``sweep``: a grid of tasks x simulator configs x seeds, each cell an independent job.

A grid is a TOML file (or the same structure as a dict)::

    tasks = ["digits", { name = "digits", downsample = 4 }]
    seeds = [0, 1, 2, 3]
    presets = ["cmos-45nm", "cmos-7nm"]    # optional: default, every preset that fits

    [[simulators]]
    name = "gpu-mlp"
    set = { hidden = [16], device = "cpu" }     # fixed options
    grid = { epochs = [2, 4] }                  # swept options: every combination

One *cell* is (task, simulator with one config, seed), exactly a cell of
:func:`nonvon.compare.compare`, with the same key (:func:`~nonvon.compare.cell_key`)
and the same result file, ``<out>/cache/<key>.json``: a cell computed by either
command is reused by the other. Presets only price a cell's ledger, which is cheap,
so they are not separate jobs: each finished cell is priced on every preset of the
grid that fits it when the summary is written.

Cells run in worker processes (``executor="local"``), on a Ray cluster
(``executor="ray"``) or in this process (``executor="inline"``). Workers compute
and send the result back as JSON, with the trained parameters (base64 safetensors, kept
as ``<key>.safetensors`` beside the result for ``nonvon recount``); the driver writes each
cell atomically as soon as it finishes, so no shared file system is needed and a killed
sweep loses only the cells that were running. A failing cell is recorded with its
traceback in ``<out>/failed/<key>.json``, never dropped; a rerun skips finished
and failed cells, ``retry_failed=True`` reruns the failed ones.

Example:
    >>> from nonvon.sweep import run_sweep
    >>> outcome = run_sweep("studies/sweep_example/grid.toml", out_dir="sweep-out", jobs=2)
    >>> outcome.counts  # {'done': 24, 'failed': 0, ...}
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import difflib
import functools
import itertools
import json
import os
import socket
import statistics
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json
from nonvon.compare import (
    QUICK_SUBSET,
    _presets_for,
    capture_state,
    cell_key,
    load_cell,
    save_cell,
    write_results,
)
from nonvon.errors import ConfigError, DataError, NonvonError
from nonvon.result import CONCURRENT_CELLS_ENV, Result

__all__ = [
    "EXECUTORS", "Cell", "Grid", "SimSpec", "SweepOutcome", "TaskSpec", "load_grid",
    "plan_sweep", "print_summary", "run_cell", "run_sweep",
]

EXECUTORS = ("local", "ray", "inline")
DONE, FAILED, PENDING = "done", "failed", "pending"
_GRID_KEYS = ("description", "tasks", "simulators", "seeds", "presets", "quick", "out")
_TRANSFORMS = ("subset", "downsample", "classes", "pca")
_SIM_KEYS = ("name", "set", "grid")


# -- the grid ---------------------------------------------------------------------------
def _reject_unknown(table: Mapping, allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            raise ConfigError(f"{where}: unknown key {key!r}",
                              f"did you mean {close[0]!r}?" if close
                              else f"allowed keys: {', '.join(allowed)}")


def _tuples(value: Any) -> Any:
    """TOML arrays become tuples, as config dataclasses expect (and as ``--set`` does)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A registered task and the transforms applied to it, in order.

    ``transforms`` holds ``(op, value)`` pairs with ``op`` one of ``subset``
    (``[n_train, n_test]`` or ``[n_train, n_test, seed]``), ``downsample`` (side),
    ``classes`` (a list of class indices) and ``pca`` (k).
    """

    name: str
    transforms: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, item: Any, where: str) -> TaskSpec:
        if isinstance(item, str) and item:
            return cls(item)
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a task name or a table, got {item!r}",
                              'write "digits" or { name = "digits", downsample = 4 }')
        _reject_unknown(item, ("name", *_TRANSFORMS), where)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: the task table has no name", 'add name = "digits"')
        ops = []
        for op, value in item.items():
            if op == "name":
                continue
            w = f"{where}, {op}"
            if op == "subset":
                if (not isinstance(value, list) or len(value) not in (2, 3)
                        or not all(_is_int(v) for v in value)):
                    raise ConfigError(f"{w} = {value!r}",
                                      "write subset = [n_train, n_test] or [n_train, n_test, seed]")
            elif op == "classes":
                if not isinstance(value, list) or not all(_is_int(v) for v in value):
                    raise ConfigError(f"{w} = {value!r}", "write classes = [3, 6]")
            elif not _is_int(value):
                raise ConfigError(f"{w} = {value!r} must be an integer", f"e.g. {op} = 4")
            ops.append((op, _tuples(value)))
        return cls(name, tuple(ops))

    def build(self, reg, *, quick: bool = False, data_dir=None):
        """Load the task from ``reg`` and apply the transforms (``quick``: subset first)."""
        kwargs: dict[str, Any] = {"progress": False}
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        task = reg.task(self.name, **kwargs)
        if quick:
            n_tr, n_te = QUICK_SUBSET
            task = task.subset(min(n_tr, len(task.y_train)), min(n_te, len(task.y_test)), seed=0)
        for op, value in self.transforms:
            if op == "subset":
                task = task.subset(*value)
            elif op == "downsample":
                task = task.downsample(value)
            elif op == "classes":
                task = task.select_classes(*value)
            else:
                task = task.pca(value)
        return task

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "transforms": [[op, _jsonable(v)] for op, v in self.transforms]}

    @classmethod
    def from_json(cls, d: Mapping) -> TaskSpec:
        return cls(d["name"], tuple((op, _tuples(v)) for op, v in d["transforms"]))


@dataclasses.dataclass(frozen=True)
class SimSpec:
    """A simulator with fixed options (``set``) and swept options (``grid``)."""

    name: str
    set: tuple[tuple[str, Any], ...] = ()
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @classmethod
    def parse(cls, item: Any, where: str) -> SimSpec:
        if isinstance(item, str) and item:
            return cls(item)
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a simulator name or a table, got {item!r}",
                              'write [[simulators]] with name = "gpu-mlp" (and set / grid)')
        _reject_unknown(item, _SIM_KEYS, where)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: the simulator table has no name", 'add name = "gpu-mlp"')
        fixed, swept = item.get("set", {}), item.get("grid", {})
        for key, table in (("set", fixed), ("grid", swept)):
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: {key} must be a table of options, got {table!r}",
                                  f"write {key} = {{ epochs = {'[2, 4]' if key == 'grid' else '2'} }}")
        for option, values in swept.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: grid.{option} = {values!r} must be a non-empty list "
                                  "of the values to sweep",
                                  f"write grid.{option} = [a, b], or move it to set for one value")
        both = sorted(set(fixed) & set(swept))
        if both:
            raise ConfigError(f"{where}: option(s) {both} are both fixed (set) and swept (grid)",
                              "keep each option in one of the two")
        return cls(name, tuple((k, _tuples(v)) for k, v in fixed.items()),
                   tuple((k, tuple(_tuples(x) for x in v)) for k, v in swept.items()))

    def configs(self) -> list[dict[str, Any]]:
        """Every combination of the swept values, each merged with the fixed options."""
        names = [k for k, _ in self.grid]
        return [{**dict(self.set), **dict(zip(names, combo, strict=True))}
                for combo in itertools.product(*(v for _, v in self.grid))]


@dataclasses.dataclass(frozen=True)
class Grid:
    """A parsed, type-checked sweep grid (names are checked against the registry by :func:`plan_sweep`)."""

    tasks: tuple[TaskSpec, ...]
    simulators: tuple[SimSpec, ...]
    seeds: tuple[int, ...] = (0,)
    presets: tuple[str, ...] | None = None
    quick: bool = False
    out: Path | None = None
    description: str = ""
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "<dict>", base: Path | None = None) -> Grid:
        """Validate a grid given as a mapping (a parsed TOML file, or built in Python).

        Args:
            data: the grid (keys as in the module docstring).
            source: what to call the grid in messages (its path).
            base: folder that relative preset paths and ``out`` are resolved against.
        """
        where = f"grid {source}"
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a table, got {type(data).__name__}",
                              "a grid has keys tasks, simulators, seeds, presets (docs/sweeps.md)")
        _reject_unknown(data, _GRID_KEYS, where)
        tasks = data.get("tasks")
        if isinstance(tasks, str | dict):
            tasks = [tasks]
        if not isinstance(tasks, list) or not tasks:
            raise ConfigError(f"{where}: no tasks", 'add tasks = ["digits"]')
        sims = data.get("simulators")
        if isinstance(sims, str | dict):
            sims = [sims]
        if not isinstance(sims, list) or not sims:
            raise ConfigError(f"{where}: no simulators",
                              'add simulators = ["gpu-mlp"] or a [[simulators]] table')
        seeds = data.get("seeds", [0])
        if _is_int(seeds):
            seeds = [seeds]
        if (not isinstance(seeds, list) or not seeds
                or not all(_is_int(s) and s >= 0 for s in seeds)):
            raise ConfigError(f"{where}: seeds = {seeds!r}",
                              "give a non-empty list of integers >= 0, e.g. seeds = [0, 1, 2]")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}: seeds = {seeds} repeats a seed", "list each seed once")
        presets = data.get("presets")
        if presets is not None:
            if isinstance(presets, str):
                presets = [presets]
            if not isinstance(presets, list) or not presets or not all(
                    isinstance(p, str) and p for p in presets):
                raise ConfigError(f"{where}: presets = {presets!r}",
                                  'give preset names or TOML paths, e.g. presets = ["cmos-45nm"], '
                                  "or leave it out to use every preset that fits")
            presets = [_resolve(p, base) if p.endswith(".toml") else p for p in presets]
        quick = data.get("quick", False)
        if not isinstance(quick, bool):
            raise ConfigError(f"{where}: quick = {quick!r} must be true or false",
                              "write quick = true (or leave it out)")
        out = data.get("out")
        if out is not None and (not isinstance(out, str) or not out):
            raise ConfigError(f"{where}: out = {out!r} must be a folder path",
                              'write out = "results/my-sweep" (or leave it out and use --out)')
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{where}: description must be a string",
                              'write description = "what this sweep is for"')
        return cls(tuple(TaskSpec.parse(t, f"{where}, tasks[{i}]") for i, t in enumerate(tasks)),
                   tuple(SimSpec.parse(s, f"{where}, simulators[{i}]") for i, s in enumerate(sims)),
                   tuple(seeds), tuple(presets) if presets is not None else None, quick,
                   Path(_resolve(out, base)) if out else None, description, source)


def _resolve(path: str, base: Path | None) -> str:
    p = Path(path).expanduser()
    return str(base / p) if base is not None and not p.is_absolute() else str(p)


def load_grid(path: str | os.PathLike) -> Grid:
    """Read and validate a grid TOML file (data only: nothing in it is executed).

    Raises:
        ConfigError: the file is missing, unreadable, not TOML, or not a valid grid.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} does not exist",
                          "give the path of a grid TOML file (see docs/sweeps.md)") from None
    except (IsADirectoryError, PermissionError, OSError) as e:
        raise ConfigError(f"cannot read grid file {path}: {e.strerror or e}",
                          "give the path of a grid TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"grid file {path} is not valid TOML: {e}",
                          "fix the syntax at the position shown (docs/sweeps.md has an example)"
                          ) from None
    return Grid.from_dict(data, str(path), base=path.parent)


# -- the plan ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Cell:
    """One job: a task, a simulator with its config overrides, a seed; and where it stands."""

    key: str
    task: TaskSpec
    task_name: str
    simulator: str
    overrides: dict[str, Any]
    seed: int
    presets: tuple[str, ...]
    config_label: str
    quick: bool = False
    data_dir: str | None = None

    @property
    def label(self) -> str:
        cfg = f"[{self.config_label}]" if self.config_label else ""
        return f"{self.task_name} / {self.simulator}{cfg} / seed {self.seed}"

    def job(self) -> dict[str, Any]:
        """What a worker needs to compute the cell, as plain JSON."""
        return {"key": self.key, "task": self.task.to_json(), "quick": self.quick,
                "data_dir": self.data_dir, "simulator": self.simulator,
                "overrides": _jsonable(self.overrides), "seed": self.seed, "label": self.label}


def _where_error(err: NonvonError, where: str) -> NonvonError:
    """The same error, its message prefixed with where in the grid it arose."""
    return type(err)(f"{where}: {err.message}", err.hint)


def _config_labels(entries: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Per simulator, name only the options whose value differs between its configs."""
    varying: dict[str, set[str]] = {}
    for sim in dict.fromkeys(s for s, _ in entries):
        same = [c for s, c in entries if s == sim]
        varying[sim] = {k for c in same for k in c
                        if any(o.get(k, object()) != c[k] for o in same)}
    return [",".join(f"{k}={_short(v)}" for k, v in cfg.items() if k in varying[sim])
            for sim, cfg in entries]


def _short(v: Any) -> str:
    return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)


@dataclasses.dataclass
class Plan:
    """The cells of a grid, and the presets and loaded tasks they refer to."""

    cells: list[Cell]
    presets: dict[str, Any]  # name -> Preset
    tasks: dict[TaskSpec, Any] = dataclasses.field(default_factory=dict)  # spec -> Task


def plan_sweep(grid: Grid, reg=None, *, data_dir=None) -> Plan:
    """Check every name, config, task and preset of ``grid`` and list its cells.

    Every task is loaded and every simulator config built here, before any
    training, so a typo fails in seconds, not after the first hour of a sweep.

    Raises:
        UnknownNameError, ConfigError, IncompatibleError, DataError, PresetError: with
            the grid location in the message.
    """
    from nonvon.registry import registry

    reg = reg or registry()
    where = f"grid {grid.source}"
    tasks = []
    for i, spec in enumerate(grid.tasks):
        try:
            tasks.append(spec.build(reg, quick=grid.quick, data_dir=data_dir))
        except NonvonError as e:
            raise _where_error(e, f"{where}, tasks[{i}] ({spec.name})") from None
    entries: list[tuple[int, str, dict[str, Any], Any, list]] = []
    for i, spec in enumerate(grid.simulators):
        w = f"{where}, simulators[{i}] ({spec.name})"
        cls = reg.simulators.get(spec.name)
        quick_cfg = dict(getattr(cls, "quick", {})) if grid.quick and cls else {}
        for cfg in spec.configs():
            overrides = {**quick_cfg, **cfg}
            try:
                sim = reg.simulator(spec.name, **overrides)
                presets = _presets_for(sim, grid.presets, reg)
            except NonvonError as e:
                raise _where_error(e, w) from None
            entries.append((i, spec.name, overrides, sim, presets))
    labels = _config_labels([(name, cfg) for _, name, cfg, _, _ in entries])
    cells: list[Cell] = []
    seen: dict[str, str] = {}
    all_presets: dict[str, Any] = {}
    dd = str(data_dir) if data_dir is not None else None
    for spec, task in zip(grid.tasks, tasks, strict=True):
        for (i, name, overrides, sim, presets), label in zip(entries, labels, strict=True):
            try:
                sim.check_task(task)
            except NonvonError as e:
                raise _where_error(e, f"{where}, simulators[{i}] ({name}) on task {task.name!r}"
                                   ) from None
            for p in presets:
                all_presets[p.name] = p
            for seed in grid.seeds:
                cell = Cell(cell_key(task, sim, seed), spec, task.name, name, overrides, seed,
                            tuple(p.name for p in presets), label, grid.quick, dd)
                if cell.key in seen:
                    raise ConfigError(f"{where}: cell {cell.label} is listed twice (same task, "
                                      f"simulator config and seed as {seen[cell.key]})",
                                      "remove the duplicate task or simulator entry")
                seen[cell.key] = cell.label
                cells.append(cell)
    return Plan(cells, all_presets, dict(zip(grid.tasks, tasks, strict=True)))


# -- computing one cell -----------------------------------------------------------------
@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads: the same count everywhere gives the same floats."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=2)  # jobs come task by task; a full data set is large
def _worker_task(spec_json: str, quick: bool, data_dir: str | None):
    from nonvon.registry import registry

    return TaskSpec.from_json(json.loads(spec_json)).build(registry(), quick=quick, data_dir=data_dir)


def evaluate_cell(task, sim, seed: int, threads: int | None = 1) -> Result:
    """Fit ``sim`` on ``task`` with ``seed`` and evaluate it on the test split."""
    with _torch_threads(threads):
        return sim.fit(task, seed=seed, progress=False).evaluate(task)


def run_cell(job: Mapping[str, Any], *, threads: int | None = 1, reg=None,
             task=None) -> dict[str, Any]:
    """Compute one cell from its :meth:`Cell.job`; never raises for a failing cell.

    The cell key is recomputed from the task this worker loaded and the config it
    built; a mismatch (other data, another nonvon version on a cluster node) is a
    failure rather than a result filed under the wrong key.

    Args:
        job: :meth:`Cell.job`.
        threads: torch threads while the cell runs (``None``: leave as is).
        reg: registry to build from (default: this process's).
        task: the task already loaded by the caller (otherwise loaded from ``job``).

    Returns:
        ``{"key", "status": "done", "result": Result.to_dict()}`` or
        ``{"key", "status": "failed", "error", "message", "hint", "traceback", ...}``.
    """
    key = job.get("key", "?")
    try:
        if task is None and reg is None:  # a worker process: keep its last tasks loaded
            task = _worker_task(json.dumps(job["task"], sort_keys=True), bool(job["quick"]),
                                job["data_dir"])
        elif task is None:
            task = TaskSpec.from_json(job["task"]).build(reg, quick=bool(job["quick"]),
                                                         data_dir=job["data_dir"])
        if reg is None:
            from nonvon.registry import registry

            reg = registry()
        sim = reg.simulator(job["simulator"], **{k: _tuples(v) for k, v in job["overrides"].items()})
        seed = int(job["seed"])
        actual = cell_key(task, sim, seed)
        if actual != key:
            raise DataError(f"this worker computes cell key {actual} for {job.get('label', key)}, "
                            f"the driver planned {key}: its data, config defaults or nonvon "
                            "version differ from the driver's",
                            "install the same nonvon version and data files on every worker")
        record = evaluate_cell(task, sim, seed, threads).to_dict()
        json.dumps(record, allow_nan=False)  # a NaN or odd type fails here, with a traceback
        with _torch_threads(threads):  # the record names the thread count the cell ran with
            state, stored = capture_state(sim, task)
        # the parameters travel back with the result (as base64 in the JSON), so a Ray node
        # needs no shared file system to keep them beside the cell
        return {"key": key, "status": DONE, "result": record, "stored_state": stored,
                "state": base64.b64encode(state).decode("ascii") if state is not None else None}
    except Exception as e:  # recorded with its traceback, never dropped
        return _failure(key, type(e).__name__, getattr(e, "message", str(e)),
                        getattr(e, "hint", None), traceback.format_exc())


def _failure(key: str, error: str, message: str, hint: str | None, tb: str) -> dict[str, Any]:
    return {"key": key, "status": FAILED, "error": error, "message": message, "hint": hint,
            "traceback": tb, "host": socket.gethostname(), "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# -- executors: each yields outcomes (run_cell's dicts) as cells finish ------------------
def _run_inline(jobs: list[dict], threads, reg, tasks: Mapping[str, Any]) -> Iterator[dict]:
    for job in jobs:
        yield run_cell(job, threads=threads, reg=reg, task=tasks[job["key"]])


def _worker_loop(conn, threads: int | None, n_workers: int = 1) -> None:
    """Body of a local worker process: JSON jobs in, JSON outcomes out, until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    # each result names the machine it ran on; its wall times also depend on the cells
    # running beside it (see nonvon.result.machine_description)
    os.environ[CONCURRENT_CELLS_ENV] = str(n_workers)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        while True:
            raw = conn.recv_bytes()
            if not raw:
                return
            outcome = run_cell(json.loads(raw), threads=None)
            conn.send_bytes(json.dumps(outcome, allow_nan=False).encode())
    except (EOFError, OSError):  # the driver is gone: stop quietly
        return


@dataclasses.dataclass
class _Worker:
    proc: Any
    conn: Any
    job: dict | None = None


def _run_local(jobs: list[dict], n_workers: int, threads) -> Iterator[dict]:
    """A pool of ``n_workers`` long-lived processes (spawned: no fork of a threaded parent).

    Unlike ``concurrent.futures``, a worker that dies (out of memory, a crash in
    native code) fails only the cell it was running; a fresh worker takes its place.
    Jobs and outcomes travel as JSON bytes, not pickles.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    pending = list(reversed(jobs))
    workers: list[_Worker] = []

    def start() -> _Worker:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_loop, args=(child, threads, min(n_workers, len(jobs))),
                           name="nonvon-sweep-worker")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def assign(w: _Worker) -> None:
        w.job = pending.pop()
        w.conn.send_bytes(json.dumps(w.job).encode())

    try:
        for _ in range(min(n_workers, len(pending))):
            workers.append(start())
        for w in workers:
            assign(w)
        while any(w.job is not None for w in workers):
            busy = [w for w in workers if w.job is not None]
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                try:
                    outcome = json.loads(w.conn.recv_bytes())
                except (EOFError, OSError):
                    w.proc.join(5)
                    outcome = _failure(w.job["key"], "WorkerDied",
                                       f"the worker process died (exit code {w.proc.exitcode}) "
                                       f"while computing {w.job.get('label', w.job['key'])}",
                                       "a crash in native code or the out-of-memory killer; "
                                       "rerun with --retry-failed, or fewer --jobs", "")
                    w.conn.close()
                    if pending:  # a fresh worker takes the dead one's place
                        fresh = start()
                        w.proc, w.conn = fresh.proc, fresh.conn
                w.job = None
                yield outcome
                if pending:
                    assign(w)
    finally:
        for w in workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send_bytes(b"")
        for w in workers:
            w.proc.join(2 if w.job is None else 0.1)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(5)
            w.conn.close()


def _ray_cell(job_json: str, threads: int | None) -> str:
    """Body of a Ray task (module level, so Ray ships it by reference)."""
    return json.dumps(run_cell(json.loads(job_json), threads=threads), allow_nan=False)


def _require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed",
                          "pip install 'nonvon[ray]', or use --executor local") from None
    return ray


def _run_ray(jobs: list[dict], n_cpus: int | None, threads, address: str | None) -> Iterator[dict]:
    """Each cell a Ray task; outcomes come back as JSON strings as tasks finish.

    With ``address`` (``"auto"``, ``"ray://host:10001"``, ...) the sweep joins that
    cluster, whose nodes need nonvon (and the data) installed; without it a local
    Ray instance with ``n_cpus`` CPUs is started and stopped again.
    """
    import logging

    ray = _require_ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address is None:
            kwargs["num_cpus"] = n_cpus
        ray.init(address=address, **kwargs)
    try:
        remote = ray.remote(num_cpus=1)(_ray_cell)
        refs = {remote.remote(json.dumps(job), threads): job for job in jobs}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                job = refs.pop(ref)
                try:
                    yield json.loads(ray.get(ref))
                except ray.exceptions.RayError as e:
                    yield _failure(job["key"], type(e).__name__,
                                   f"Ray could not run {job.get('label', job['key'])}: "
                                   f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                                   "check the cluster's logs; rerun with --retry-failed",
                                   str(e))
    finally:
        if started:
            ray.shutdown()


# -- the driver ------------------------------------------------------------------------
@dataclasses.dataclass
class CellStatus:
    cell: Cell
    status: str
    failure: dict[str, Any] | None = None


@dataclasses.dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: every cell's status, the priced rows, counts."""

    cells: list[CellStatus]
    rows: list[dict[str, Any]]
    computed: int
    cached: int
    out_dir: Path | None

    @property
    def failed(self) -> list[CellStatus]:
        return [c for c in self.cells if c.status == FAILED]

    @property
    def counts(self) -> dict[str, int]:
        out = {DONE: 0, FAILED: 0, PENDING: 0}
        for c in self.cells:
            out[c.status] += 1
        return {**out, "computed": self.computed, "cached": self.cached}


def _result_path(out: Path, key: str) -> Path:
    return out / "cache" / f"{key}.json"


def _failure_path(out: Path, key: str) -> Path:
    return out / "failed" / f"{key}.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a JSON file written by nonvon ({e})",
                        "delete it (the cell is recomputed on the next run)") from None


def _load_result(path: Path) -> Result:
    return load_cell(path).result


def _status(out: Path | None, cell: Cell) -> CellStatus:
    if out is None:
        return CellStatus(cell, PENDING)
    if _result_path(out, cell.key).exists():
        return CellStatus(cell, DONE)
    fp = _failure_path(out, cell.key)
    if fp.exists():
        return CellStatus(cell, FAILED, _read_json(fp))
    return CellStatus(cell, PENDING)


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One sweep writes into a folder at a time; the lock dies with its process."""
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


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {out} is a file", "give --out a folder path")
    for sub in ("cache", "failed"):
        if (out / sub).exists() and not (out / sub).is_dir():
            raise ConfigError(f"{out / sub} is a file, not nonvon's {sub} folder",
                              "give --out a fresh folder")


def run_sweep(grid: Grid | Mapping | str | os.PathLike, *, out_dir: str | os.PathLike | None = None,
              executor: str = "local", jobs: int | None = None, address: str | None = None,
              retry_failed: bool = False, data_dir=None, threads: int | None = 1,
              progress: bool = True, dry_run: bool = False, write_report: bool = True,
              reg=None, log: Callable[[str], None] = print,
              order: Callable[[Cell], Any] | None = None) -> SweepOutcome:
    """Run every cell of ``grid`` that is not finished yet, then write the summary.

    Args:
        grid: a :class:`Grid`, a grid mapping, or the path of a grid TOML file.
        out_dir: results folder (``cache/``, ``failed/``, ``sweep.json``, ``results.json``,
            ``results.csv``, ``report.md``, figures); default: the grid's ``out``, else
            ``<grid file stem>-results`` in the current folder.
        executor: ``"local"`` (worker processes), ``"ray"`` or ``"inline"`` (this process).
        jobs: parallel cells (local: worker processes, default the CPU count; ray: CPUs
            of the local instance it starts). Ignored by ``inline``.
        address: Ray cluster address (``executor="ray"`` only); default a local instance.
        retry_failed: rerun the cells recorded as failed (otherwise they are skipped).
        data_dir: where to look for dataset files (as ``--data-dir``).
        threads: torch intra-op threads per cell (1 by default, so results do not depend
            on the executor); ``None`` leaves torch's default.
        dry_run: plan and report statuses only; nothing is run or written.
        write_report: also write results.csv, report.md and the figures (results.json
            is always written).
        reg: a registry (default: the process-wide one); the ``inline`` executor uses it,
            worker processes discover their own.
        order: sort key for the cells still to run (default: grid order); e.g. longest
            first, so that parallel workers finish together rather than wait on one late cell.

    Raises:
        NonvonError: bad grid, names, configs, executor options or output folder; raised
            before anything is written.
    """
    from nonvon.registry import registry

    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}", f"choose one of: {', '.join(EXECUTORS)}")
    if jobs is not None and (not _is_int(jobs) or jobs < 1):
        raise ConfigError(f"jobs={jobs!r} must be a positive integer", "e.g. --jobs 4")
    if threads is not None and (not _is_int(threads) or threads < 1):
        raise ConfigError(f"threads={threads!r} must be a positive integer", "e.g. --threads 1")
    if address is not None and executor != "ray":
        raise ConfigError(f"--address {address} is for the Ray executor",
                          "add --executor ray, or drop --address")
    if executor == "ray" and not dry_run:
        _require_ray()
    if isinstance(grid, str | os.PathLike):
        grid = load_grid(grid)
    elif not isinstance(grid, Grid):
        grid = Grid.from_dict(grid)
    if out_dir is not None:
        out = Path(out_dir)
    elif grid.out is not None:
        out = grid.out
    elif grid.source != "<dict>":
        out = Path(f"{Path(grid.source).stem}-results")
    else:
        raise ConfigError("no output folder for this sweep", "pass out_dir= (or --out)")
    _check_out(out)
    reg = reg or registry()
    plan = plan_sweep(grid, reg, data_dir=data_dir)
    statuses = [_status(out, c) for c in plan.cells]
    todo = [s.cell for s in statuses
            if s.status == PENDING or (retry_failed and s.status == FAILED)]
    if order is not None:
        todo.sort(key=order)
    if dry_run:
        return SweepOutcome(statuses, [], 0, 0, out)

    with _lock(out):
        _write_manifest(out, grid, statuses)
        jobs_json = [c.job() for c in todo]
        by_key = {c.key: c for c in todo}
        n = jobs or os.cpu_count() or 1
        if executor == "inline":
            stream = _run_inline(jobs_json, threads, reg,
                                 {c.key: plan.tasks[c.task] for c in todo})
        elif executor == "local":
            stream = _run_local(jobs_json, n, threads)
        else:
            stream = _run_ray(jobs_json, jobs or os.cpu_count(), threads, address)
        from nonvon.progress import progress_bar

        computed = failed_now = 0
        with progress_bar(progress and bool(todo)) as bar, contextlib.closing(stream):
            job = bar.add_task("sweep", total=len(todo), status="")
            for outcome in stream:
                cell = by_key[outcome["key"]]
                if outcome["status"] == DONE:
                    state = outcome.get("state")
                    save_cell(_result_path(out, cell.key), Result.from_dict(outcome["result"]),
                              base64.b64decode(state) if state else None,
                              outcome.get("stored_state") or {"file": None, "reason": "not sent"})
                    _failure_path(out, cell.key).unlink(missing_ok=True)
                    computed += 1
                    if not progress:  # a log line per cell, so a long headless run shows its pace
                        r = outcome["result"]
                        log(f"done {computed + failed_now}/{len(todo)} {cell.label}: "
                            f"{r['accuracy']:.2%}, fit {r.get('fit_wall_s') or 0:.0f} s")
                else:
                    record = {**outcome, "cell": cell.job()}
                    atomic_write_json(_failure_path(out, cell.key), record)
                    failed_now += 1
                    log(f"FAILED {cell.label}: {outcome['error']}: {outcome['message']} "
                        f"(traceback in {_failure_path(out, cell.key)})")
                bar.update(job, advance=1, status=f"{cell.label}: {outcome['status']}")
        statuses = [_status(out, c) for c in plan.cells]
        rows = summary_rows(out, statuses, plan)
        _write_manifest(out, grid, statuses)
        if rows and write_report:
            write_results(rows, out)
        else:  # no figures of nothing
            atomic_write_json(out / "results.json", {"schema": 1, "rows": rows})
    outcome = SweepOutcome(statuses, rows, computed, len(plan.cells) - len(todo), out)
    c = outcome.counts
    log(f"{computed} cell(s) computed, {outcome.cached} already finished"
        f"{f', {failed_now} failed now' if failed_now else ''}; "
        f"{c[DONE]} done, {c[FAILED]} failed of {len(plan.cells)} in {out}")
    return outcome


def summary_rows(out: Path, statuses: list[CellStatus], plan: Plan) -> list[dict[str, Any]]:
    """results.json rows of the finished cells, in plan order (whatever order they ran in).

    Rows are those of ``compare`` plus ``cell`` (the cell key) and ``config`` (the
    overrides of the cell), so two configs of one simulator stay apart.
    """
    rows = []
    for s in statuses:
        if s.status != DONE:
            continue
        cached = load_cell(_result_path(out, s.cell.key))
        result = cached.result
        extra = {"cell": s.cell.key, "config": _jsonable(s.cell.overrides),
                 "config_label": s.cell.config_label,
                 **({"recounted": True} if cached.recount is not None else {})}
        rows += [{**result.priced(plan.presets[p]).modelled_row(), **extra}
                 for p in s.cell.presets]
        rows += [{**r, **extra} for r in result.measured_rows()]
    return rows


def _write_manifest(out: Path, grid: Grid, statuses: list[CellStatus]) -> None:
    cells = []
    for s in statuses:
        entry = {"key": s.cell.key, "task": s.cell.task_name, "simulator": s.cell.simulator,
                 "config": _jsonable(s.cell.overrides), "seed": s.cell.seed,
                 "presets": list(s.cell.presets), "status": s.status}
        if s.failure:
            entry["error"] = f"{s.failure.get('error')}: {s.failure.get('message')}"
            entry["failure_file"] = str(_failure_path(out, s.cell.key))
        cells.append(entry)
    atomic_write_json(out / "sweep.json", {"schema": 1, "grid": grid.source,
                                           "description": grid.description, "cells": cells})


# -- the summary table ------------------------------------------------------------------
def summarize(outcome: SweepOutcome) -> list[dict[str, Any]]:
    """Modelled rows grouped over seeds: mean and spread of accuracy and energy."""
    groups: dict[tuple, list[dict]] = {}
    for r in outcome.rows:
        if r["kind"] != "modelled":
            continue
        groups.setdefault((r["task"], r["simulator"], r["config_label"], r["preset"]), []).append(r)
    out = []
    for (task, sim, cfg, preset), rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        energy = [r["energy_per_inference_j"] for r in rs]
        lat = [r["latency_per_inference_s"] for r in rs if r["latency_per_inference_s"] is not None]
        out.append({"task": task, "simulator": sim, "config": cfg, "preset": preset,
                    "n_seeds": len(rs), "accuracy_mean": statistics.fmean(acc),
                    "accuracy_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                    "energy_mean_j": statistics.fmean(energy),
                    "latency_mean_s": statistics.fmean(lat) if lat else None})
    return out


def print_summary(outcome: SweepOutcome, console=None) -> None:
    """The sweep's summary on the terminal: one line per (task, config, preset); failures."""
    from rich.console import Console
    from rich.table import Table

    from nonvon.report import format_si

    con = console or Console()
    t = Table("task", "simulator", "config", "preset", "seeds", "accuracy (mean ± sd)",
              "energy/inference", "latency/inference", title="nonvon sweep")
    for g in summarize(outcome):
        t.add_row(g["task"], g["simulator"], g["config"] or "-", g["preset"], str(g["n_seeds"]),
                  f"{100 * g['accuracy_mean']:.2f} ± {100 * g['accuracy_sd']:.2f}%",
                  format_si(g["energy_mean_j"], "J"), format_si(g["latency_mean_s"], "s"))
    con.print(t)
    failed = outcome.failed
    if failed:
        t = Table("cell", "error", "traceback", title=f"[red]{len(failed)} failed cell(s)")
        for s in failed:
            f = s.failure or {}
            t.add_row(s.cell.label, f"{f.get('error')}: {f.get('message')}",
                      str(_failure_path(outcome.out_dir, s.cell.key)) if outcome.out_dir else "")
        con.print(t)
    pending = [s for s in outcome.cells if s.status == PENDING]
    if pending:
        con.print(f"{len(pending)} cell(s) not run yet", style="yellow")


def print_plan(outcome: SweepOutcome, console=None) -> None:
    """``--dry-run``: every cell and whether it is done, failed or still to run."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table("cell", "key", "presets", "status", title=f"plan: {len(outcome.cells)} cell(s)")
    for s in outcome.cells:
        t.add_row(s.cell.label, s.cell.key, ", ".join(s.cell.presets), s.status)
    con.print(t)
