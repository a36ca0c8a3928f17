"""A cell: one simulator config fitted and evaluated on one task with one seed.

This module owns everything about a cell, whichever command asks for it (``compare``,
``sweep``, the pytest helpers in :mod:`nonvon.testing`):

- what it is (:class:`TaskSpec`, :class:`Cell`) and its key (:func:`cell_key`, a hash of the
  task's data, the simulator's name and config, the seed, the nonvon version and the
  simulator's code: its distributions' versions and source files);
- quick mode (:data:`QUICK_SUBSET`, :func:`quick_overrides`, :func:`quick_task`);
- the presets it is priced on (:func:`presets_for`);
- its evaluation (:func:`run_cell`, :func:`evaluate_cell`, thread pinning in :func:`torch_threads`);
- its cache files (``<cache>/<key>.json`` and the trained parameters beside it:
  :func:`save_cell`, :func:`load_cell`, :func:`capture_state`);
- its rows in ``results.json`` (:func:`cell_rows`, one schema for every command, docs/schema.md)
  and the files written from them (:func:`write_results`).

Executors (:mod:`nonvon.executors`) run cells; grids (:mod:`nonvon.grids`) list them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nonvon._io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    content_key,
    decode_tensors,
    encode_tensors,
    fallback_dir,
    shared_tensor_refs,
)
from nonvon.context import RunContext
from nonvon.energy_models import Preset
from nonvon.errors import ConfigError, DataError, IncompatibleError, invalid
from nonvon.result import Result, csv_columns, flat_row, library_versions
from nonvon.simulator import code_identity, is_execution_option
from nonvon.tasks import Task

__all__ = [
    "QUICK_SUBSET", "STATE_SUFFIX", "CachedCell", "Cell", "CellOutcome", "TaskSpec",
    "capture_state", "cell_key", "cell_rows", "check_row", "csv_columns", "evaluate_cell",
    "load_cell", "load_cell_or_set_aside", "load_rows", "load_title", "presets_for", "quick_overrides",
    "quick_task", "rows_to_csv", "run_cell", "save_cell", "set_aside", "torch_threads",
    "write_results",
]

DONE, FAILED, TRAINED = "done", "failed", "trained"


# -- quick mode ---------------------------------------------------------------------------
QUICK_SUBSET = (2000, 500)  # train, test samples under --quick


def quick_overrides(cls: type | None) -> dict[str, Any]:
    """The config overrides of a simulator class under ``--quick`` (its ``quick``)."""
    return dict(getattr(cls, "quick", {})) if cls is not None else {}


def quick_task(task: Task, sizes: tuple[int, int] = QUICK_SUBSET) -> Task:
    """``task`` cut to at most ``sizes`` (train, test) samples, a seeded subset (seed 0)."""
    return task.subset(min(sizes[0], len(task.y_train)), min(sizes[1], len(task.y_test)), seed=0)


# -- values as TOML and JSON give them ----------------------------------------------------
def tuples(value: Any) -> Any:
    """JSON and TOML arrays become tuples, as config dataclasses expect (and as ``--set`` does)."""
    if isinstance(value, list):
        return tuple(tuples(v) for v in value)
    return value


def jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


# -- what a cell is -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A registered task and the transforms applied to it, in order.

    ``transforms`` holds ``(op, value)`` pairs with ``op`` one of ``subset``
    (``(n_train, n_test)`` or ``(n_train, n_test, seed)``), ``downsample`` (side),
    ``classes`` (class indices) and ``pca`` (k). Grids parse it (:func:`nonvon.grids.parse_task`).
    """

    name: str
    transforms: tuple[tuple[str, Any], ...] = ()

    def build(self, reg, *, quick: bool = False, data_dir=None) -> Task:
        """Load the task from ``reg`` and apply the transforms (``quick``: :func:`quick_task` first)."""
        kwargs: dict[str, Any] = {"progress": False}
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        task = reg.task(self.name, **kwargs)
        if quick:
            task = quick_task(task)
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
        return {"name": self.name, "transforms": [[op, jsonable(v)] for op, v in self.transforms]}

    @classmethod
    def from_json(cls, d: Mapping) -> TaskSpec:
        return cls(d["name"], tuple((op, tuples(v)) for op, v in d["transforms"]))


def cell_key(task: Task, sim, seed: int) -> str:
    """The cache key of ``sim`` (its name and config, execution options aside) on ``task``'s
    data with ``seed``, under this nonvon version and this code of the simulator: the versions
    of the distributions that ship its classes and a hash of their source files
    (:func:`nonvon.simulator.code_identity`), so that editing a plugin recomputes its cells.

    Presets are not in the key: a cell holds an unpriced result and every run prices it
    again, so a new preset or preset version applies without retraining (each row records
    the preset's distribution in ``versions``)."""
    config = dataclasses.asdict(sim.config)
    for f in dataclasses.fields(sim.config):
        if is_execution_option(f):  # how a cell is computed does not re-key it
            del config[f.name]
    payload = {"task": task.name, "data": task.fingerprint, "simulator": sim.name,
               "config": config, "seed": seed,
               "nonvon": library_versions().get("nonvon", "?"),
               "code": code_identity(type(sim))}
    return content_key(payload)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One job: a task, a simulator with its config overrides, a seed.

    Attributes:
        key: :func:`cell_key` of the task and simulator the planner built.
        task: how a worker process rebuilds the task; ``None`` for a task passed as data
            (such a cell runs in the planning process only).
        overrides: the simulator's config overrides (quick ones included).
        presets: names of the presets it is priced on.
        config_label: the overrides that tell this config from the others of its simulator
            in the same plan (empty when there is one).
        cost: the simulator's ``cost_hint``: executors start the costliest cells first.
        measures_hardware: it reads a hardware energy counter, so it must run alone.
        memoizes_training: its simulator's fit goes through the run's training memo
            (:attr:`~nonvon.Simulator.memoizes_training`), so a fit elsewhere can train it.
        fit_only: fit only, to fill the training memo, and report ``TRAINED``: a measuring
            cell's training then runs beside the others and only its measurement alone.
    """

    key: str
    task: TaskSpec | None
    task_name: str
    simulator: str
    overrides: dict[str, Any]
    seed: int
    presets: tuple[str, ...]
    config_label: str = ""
    quick: bool = False
    data_dir: str | None = None
    cost: float = 1.0
    measures_hardware: bool = False
    memoizes_training: bool = False
    fit_only: bool = False

    @classmethod
    def of(cls, task: Task, sim, seed: int, presets: Sequence[Preset], *, spec: TaskSpec | None,
           overrides: Mapping[str, Any], config_label: str = "", quick: bool = False,
           data_dir=None) -> Cell:
        """The cell of a built ``task`` and ``sim``."""
        return cls(cell_key(task, sim, seed), spec, task.name, sim.name, dict(overrides), seed,
                   tuple(p.name for p in presets), config_label, quick,
                   str(data_dir) if data_dir is not None else None,
                   float(getattr(sim, "cost_hint", 1.0)), bool(sim.measures_hardware),
                   bool(getattr(sim, "memoizes_training", False)))

    @property
    def label(self) -> str:
        cfg = f"[{self.config_label}]" if self.config_label else ""
        return f"{self.task_name} / {self.simulator}{cfg} / seed {self.seed}"

    def job(self) -> dict[str, Any]:
        """What a worker needs to compute the cell, as plain JSON."""
        if self.task is None:
            raise ConfigError(f"{self.label}: a task given as data cannot be sent to a worker",
                              "pass the task by its registered name")
        return {"key": self.key, "task": self.task.to_json(), "task_name": self.task_name,
                "quick": self.quick, "data_dir": self.data_dir, "simulator": self.simulator,
                "overrides": jsonable(self.overrides), "seed": self.seed,
                "config_label": self.config_label, "label": self.label,
                "fit_only": self.fit_only}

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> Cell:
        """The cell of a :meth:`job` record (in a worker process)."""
        return cls(job["key"], TaskSpec.from_json(job["task"]), job["task_name"],
                   job["simulator"], {k: tuples(v) for k, v in job["overrides"].items()},
                   int(job["seed"]), (), job.get("config_label", ""), bool(job["quick"]),
                   job["data_dir"], fit_only=bool(job.get("fit_only", False)))


def presets_for(sim, chosen: Sequence[str] | None, reg) -> list[Preset]:
    """Presets to price ``sim`` on: all that fit, or the chosen ones that fit (checked up front)."""
    if chosen is None:
        found = reg.presets_for(sim.paradigm, sim.op_kinds)
        if sim.native_presets:
            found = [p for p in found if p.name in sim.native_presets]
        if not found:
            raise IncompatibleError(f"no registered preset prices every op kind {sim.name} counts",
                                    "add a preset (see docs/adding-a-device.md)")
        for p in found:
            p.check_latency_model(sim.op_kinds, sim.name)
        return found
    presets = [reg.preset(p) for p in chosen]
    usable = [p for p in presets if sim.paradigm in p.paradigms and not p.can_price(sim.op_kinds)]
    if not usable:
        raise IncompatibleError(
            f"none of the presets {list(chosen)} prices {sim.name} (paradigm {sim.paradigm!r}, "
            f"op kinds {sorted(sim.op_kinds)})",
            "choose presets that price every kind it counts (`nonvon list --json` shows each "
            "preset's ops)")
    for p in usable:
        p.check_latency_model(sim.op_kinds, sim.name)
    return usable


# -- computing a cell ---------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads: the same count everywhere gives the same floats
    (``None``: leave torch's setting as it is)."""
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


def evaluate_cell(task: Task, sim, seed: int, threads: int | None = 1, *,
                  context: RunContext | None = None, progress: bool = False) -> Result:
    """Fit ``sim`` on ``task`` with ``seed`` and evaluate it on the test split."""
    with torch_threads(threads):
        return sim.fit(task, seed=seed, progress=progress, context=context).evaluate(task)


@dataclasses.dataclass
class CellOutcome:
    """What computing a cell gave: a result and its parameters, or a failure record."""

    key: str
    status: str
    result: Result | None = None
    state: bytes | None = None
    stored_state: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None

    def to_json(self) -> str:
        """As JSON text, to cross a process boundary (parameters as base64)."""
        if self.status in (FAILED, TRAINED):
            return json.dumps({"key": self.key, "status": self.status, **(self.failure or {})},
                              allow_nan=False)
        return json.dumps({"key": self.key, "status": DONE, "result": self.result.to_dict(),
                           "stored_state": self.stored_state,
                           "state": base64.b64encode(self.state).decode("ascii")
                           if self.state is not None else None}, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> CellOutcome:
        d = json.loads(text)
        if d["status"] == TRAINED:
            return cls(d["key"], TRAINED)
        if d["status"] != DONE:
            return cls(d["key"], FAILED, failure={k: v for k, v in d.items()
                                                  if k not in ("key", "status")})
        return cls(d["key"], DONE, Result.from_dict(d["result"]),
                   base64.b64decode(d["state"]) if d.get("state") else None,
                   d.get("stored_state") or {"file": None, "reason": "not sent"})


def failure(key: str, error: str, message: str, hint: str | None, tb: str) -> CellOutcome:
    """A failed cell's outcome: the error, its traceback, where and when."""
    return CellOutcome(key, FAILED, failure={
        "error": error, "message": message, "hint": hint, "traceback": tb,
        "host": socket.gethostname(), "pid": os.getpid(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def run_cell(cell: Cell, *, reg=None, task: Task | None = None, sim=None, threads: int | None = 1,
             context: RunContext | None = None, progress: bool = False, keep_state: bool = True,
             catch: bool = True) -> CellOutcome:
    """Compute one cell.

    Args:
        cell: what to compute.
        reg: registry to build from (default: this process's).
        task, sim: the task and simulator the planner built (otherwise built from ``cell``;
            then the key is computed again and a mismatch, such as other data or another
            nonvon version on a cluster node, is a failure rather than a result filed under
            the wrong key).
        threads: torch threads while the cell runs (``None``: leave as is).
        context: the run it is part of (passed to ``fit``).
        progress: progress bars of the fit itself.
        keep_state: also capture the trained parameters (:func:`capture_state`).
        catch: return a failure outcome for an exception (otherwise it propagates).
    """
    try:
        if task is None or sim is None:
            if task is None:
                task = _task_of(cell, reg)
            if reg is None:
                from nonvon.registry import registry

                reg = registry()
            sim = reg.simulator(cell.simulator, **{k: tuples(v) for k, v in cell.overrides.items()})
            actual = cell_key(task, sim, cell.seed)
            if actual != cell.key:
                raise DataError(f"this worker computes cell key {actual} for {cell.label}, the "
                                f"driver planned {cell.key}: its data, config defaults or nonvon "
                                "version differ from the driver's",
                                "install the same nonvon version and data files on every worker")
        if cell.fit_only:  # the weights go to the training memo; the cell itself runs later
            with torch_threads(threads):
                sim.fit(task, seed=cell.seed, progress=progress,
                        context=dataclasses.replace(context or RunContext(), prefetch=True))
            return CellOutcome(cell.key, TRAINED)
        result = evaluate_cell(task, sim, cell.seed, threads, context=context, progress=progress)
        json.dumps(result.to_dict(), allow_nan=False)  # a NaN or odd type fails here, with a traceback
        state, stored = None, None
        if keep_state:
            with torch_threads(threads):  # the record names the thread count the cell ran with
                state, stored = capture_state(sim, task)
        return CellOutcome(cell.key, DONE, result, state, stored)
    except Exception as e:  # recorded with its traceback, never dropped
        if not catch:
            raise
        return failure(cell.key, type(e).__name__, getattr(e, "message", str(e)),
                       getattr(e, "hint", None), traceback.format_exc())


@functools.lru_cache(maxsize=2)  # cells come task by task; a full data set is large
def _worker_task(spec_json: str, quick: bool, data_dir: str | None) -> Task:
    from nonvon.registry import registry

    return TaskSpec.from_json(json.loads(spec_json)).build(registry(), quick=quick, data_dir=data_dir)


def _task_of(cell: Cell, reg) -> Task:
    """The cell's task: in a worker (no registry given) the last two are kept loaded."""
    if cell.task is None:
        raise ConfigError(f"{cell.label}: its task was given as data", "pass the task object too")
    if reg is None:
        return _worker_task(json.dumps(cell.task.to_json(), sort_keys=True), cell.quick,
                            cell.data_dir)
    return cell.task.build(reg, quick=cell.quick, data_dir=cell.data_dir)


# -- rows ---------------------------------------------------------------------------------
def cell_rows(result: Result, presets: Sequence[Preset], cell: Cell, *,
              recounted: bool = False) -> list[dict[str, Any]]:
    """The results.json rows of a cell (docs/schema.md): one per preset, one per hardware
    measurement; each names the cell and its config, so two configs of one simulator stay
    apart and a report can read the device settings behind a number."""
    extra = {"sim_config": jsonable(result.config), "cell": cell.key,
             "config": jsonable(cell.overrides), "config_label": cell.config_label,
             **({"recounted": True} if recounted else {})}
    return ([{**result.priced(p).modelled_row(), **extra,
              "versions": {**result.versions, **p.provided_by}} for p in presets]
            + [{**r, **extra, "versions": dict(result.versions)} for r in result.measured_rows()])


def write_results(rows: list[dict[str, Any]], out_dir: Path, *, report: bool = True,
                  title: str | None = None) -> None:
    """results.json, results.csv and (``report``) report.md / .html and the figures, atomically.

    ``title`` (a sweep's description) heads the report and is kept in results.json, so a
    report rebuilt from the folder (:func:`load_title`) keeps it; ``None``: the default title.
    """
    from nonvon.report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json",
                      {"schema": 1, "rows": rows, **({"title": title} if title else {})})
    atomic_write_text(out_dir / "results.csv", rows_to_csv(rows))
    if report:
        write_report(rows, out_dir, title=title)


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV (:func:`csv_columns`): a spreadsheet gets one number per cell, so the
    energy by cost class is one column per class (empty where a row has none, e.g. a
    wall-power measurement, which cannot be split) and the per-kind breakdown a JSON string."""
    import csv

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=csv_columns(), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        flat = flat_row(row)
        flat["energy_breakdown_j"] = json.dumps(row.get("energy_breakdown_j", {}), sort_keys=True)
        flat["config"] = json.dumps(row.get("config") or {}, sort_keys=True)
        w.writerow(flat)
    return buf.getvalue()


def load_rows(results_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a results folder's results.json (JSON only: nothing is executed), each
    checked (:func:`check_row`)."""
    path = Path(results_dir) / "results.json"
    if not path.exists():
        raise ConfigError(f"{path} does not exist", "point at a folder written by `nonvon compare`")
    try:
        data = json.loads(path.read_text(), parse_constant=_no_constant)
        rows = data["rows"]
        assert isinstance(rows, list)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError,
            ValueError):
        raise ConfigError(f"{path} is not a nonvon results file",
                          "rerun `nonvon compare` to regenerate it") from None
    for i, row in enumerate(rows):
        check_row(row, f"{path}, rows[{i}]")
    return rows


def load_title(results_dir: str | Path) -> str | None:
    """The report title a results folder's results.json keeps (a sweep's description), or
    ``None`` when it keeps none (a ``compare`` folder) or there is no results.json."""
    path = Path(results_dir) / "results.json"
    try:
        title = json.loads(path.read_text()).get("title")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None  # no title to keep; load_rows names what is wrong with the file
    if title is not None and not isinstance(title, str):
        raise invalid(f"{path}, title", f"is a {type(title).__name__}, not a string",
                      "a string (the report's title)",
                      "fix or delete the title key; rerun the sweep to rewrite it", DataError)
    return title or None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


#: Numeric row fields and what they may hold (``None`` allowed where the schema says null).
_ROW_NUMBERS = {"accuracy": (0.0, 1.0, False), "energy_per_inference_j": (0.0, None, False),
                "energy_low_j": (0.0, None, True), "energy_high_j": (0.0, None, True),
                "latency_per_inference_s": (0.0, None, True), "sim_wall_s": (0.0, None, True),
                "fit_wall_s": (0.0, None, True), "n_params": (0.0, None, True),
                "n_evaluated": (1.0, None, True), "seed": (0.0, None, True)}


def check_row(row: Any, where: str) -> None:
    """Refuse a results.json row holding an impossible value (an accuracy outside [0, 1],
    a negative or non-finite energy, ...), naming the file, the row and the field."""
    if not isinstance(row, dict):
        raise invalid(where, f"a {type(row).__name__}, not an object", "an object per row",
                      "rerun `nonvon compare` to regenerate results.json", DataError)
    for field, (lo, hi, optional) in _ROW_NUMBERS.items():
        if field not in row:  # a missing field is the reader's to refuse (the report names it)
            continue
        v = row[field]
        if v is None and optional:
            continue
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and v >= lo and (hi is None or v <= hi))
        if not ok:
            allowed = (f"a finite number in [{lo:g}, {hi:g}]" if hi is not None
                       else f"a finite number >= {lo:g}")
            raise invalid(f"{where}, key {field!r}", f"{field} = {v!r} is impossible", allowed,
                          "rerun `nonvon compare` (or `nonvon recount`) to regenerate "
                          "results.json; do not edit it by hand", DataError)


# -- cached cells: the result, and the trained parameters beside it ----------------------------
STATE_SUFFIX = ".safetensors"
#: What a cell's JSON holds beside the fields of its :class:`Result`.
_CELL_KEYS = ("stored_state", "recount")


@dataclasses.dataclass
class CachedCell:
    """A cell as read from ``<cache>/<key>.json``.

    Attributes:
        stored_state: how its parameters are kept (``file``, ``sha256``, the data
            ``task_fingerprint``, ``split``, ``limit``, ``torch_threads``), or where none are,
            ``file`` null and a ``reason``; ``None`` for a cell written before parameters were kept.
        recount: the last :func:`nonvon.compare.recount` of the cell (its wall time, machine,
            what it replaced), ``None`` when the cell was never recounted.
    """

    path: Path
    result: Result
    stored_state: dict[str, Any] | None = None
    recount: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.path.stem

    @property
    def label(self) -> str:
        r = self.result
        return f"{r.task} / {r.simulator} / seed {r.seed}"


def load_cell(path: str | Path) -> CachedCell:
    """Read a cached cell (JSON only: nothing in it is executed).

    Raises:
        DataError: the file is not a cell nonvon wrote.
    """
    path = Path(path)
    fix = "delete it (compare recomputes the cell), or restore it from a copy"
    try:
        raw = json.loads(path.read_bytes(), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path} is not a JSON file written by nonvon (not valid JSON: {e})",
                        fix) from None
    except OSError as e:
        raise DataError(f"cannot read cached cell {path}: {e.strerror or e}", fix) from None
    if not isinstance(raw, dict):
        raise DataError(f"cached cell {path} is not a result record", fix)
    extras = {k: raw.pop(k, None) for k in _CELL_KEYS}
    if any(v is not None and not isinstance(v, dict) for v in extras.values()):
        raise DataError(f"cached cell {path} has a malformed {' or '.join(_CELL_KEYS)} entry", fix)
    try:
        result = Result.from_dict(raw)
    except (ValueError, TypeError, AttributeError) as e:  # DataError, or a value of the wrong kind
        raise DataError(f"cached cell {path}: {getattr(e, 'message', None) or e}", fix) from None
    return CachedCell(path, result, **extras)


#: Cached cells that fail validation are moved here (never deleted) and recomputed.
SET_ASIDE_DIR = "set-aside"


def set_aside(path: str | Path, why: str) -> Path:
    """Move a cached cell that cannot be used (and its parameters file) into
    ``<cache>/set-aside/``, under a name not taken there; returns where the JSON went.
    Nothing is deleted: the files stay for a look, and the cell is recomputed."""
    path = Path(path)
    folder = path.parent / SET_ASIDE_DIR
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = folder / f"{path.stem}.{stamp}{path.suffix}"
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{stamp}-{n}{path.suffix}"
        n += 1
    state = path.with_suffix(STATE_SUFFIX)
    if state.exists():
        shutil.move(str(state), str(target.with_suffix(STATE_SUFFIX)))
    shutil.move(str(path), str(target))
    (target.with_suffix(".why.txt")).write_text(why + "\n")
    return target


def load_cell_or_set_aside(path: str | Path, log) -> CachedCell | None:
    """The cached cell at ``path``; ``None`` when there is none, or when it fails validation
    (then it is moved aside, :func:`set_aside`, and ``log`` says where and why, so that the
    caller recomputes it)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load_cell(path)
    except DataError as e:
        moved = set_aside(path, str(e))
        if log:
            log(f"notice: {e.message}; set aside as {moved} and computed again")
        return None


def capture_state(sim, task: Task, *, split: str = "test", limit: int | None = None
                  ) -> tuple[bytes | None, dict[str, Any]]:
    """The trained parameters of a fitted ``sim`` as safetensors bytes, and the record that lets
    :func:`nonvon.compare.recount` evaluate them again as ``sim.evaluate(task, split=split,
    limit=limit)`` did.

    A simulator that cannot save its state (``NotImplementedError``) gives no bytes and the
    reason; so does one whose state fails to save, since losing a finished cell over it would
    cost a retraining.
    """
    import torch

    record: dict[str, Any] = {"task_fingerprint": task.fingerprint, "split": split, "limit": limit,
                              # CPU float sums depend on the thread count; a recount reuses it
                              "torch_threads": torch.get_num_threads()}
    try:
        data = encode_tensors(sim.state_tensors())
    except NotImplementedError as e:
        return None, {**record, "file": None, "reason": str(e) or "state_tensors not implemented"}
    except Exception as e:  # noqa: BLE001 - recorded in the cell, which is kept
        return None, {**record, "file": None,
                      "reason": f"saving the state failed: {type(e).__name__}: {e}"}
    return data, {**record, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


#: Tensors at least this large are kept once per cache, in ``<cache>/tensors/<hash>.safetensors``,
#: and cells name them: the precision variants of one training and chips that share a training
#: would otherwise store the same weights several times.
SHARED_DIR = "tensors"
SHARED_MIN_BYTES = 1 << 16
_HASH = re.compile(r"[0-9a-f]{64}")


def _share_large_tensors(state: bytes, cache: Path) -> bytes:
    """``state`` with each large tensor moved to the cache's shared store (written once)."""
    tensors = decode_tensors(state)
    own, shared = {}, dict(shared_tensor_refs(state))
    for name, value in tensors.items():
        blob = encode_tensors({"t": value})
        if len(blob) < SHARED_MIN_BYTES:
            own[name] = value
            continue
        digest = hashlib.sha256(blob).hexdigest()
        target = cache / SHARED_DIR / f"{digest}{STATE_SUFFIX}"
        if not target.exists():
            atomic_write_bytes(target, blob)
        shared[name] = digest
    return encode_tensors(own, shared=shared)


def _resolve_shared(data: bytes, cache: Path) -> dict[str, Any]:
    """The tensors of a cell's parameters file, with the shared ones read back (hash checked)."""
    tensors = decode_tensors(data)
    for name, digest in shared_tensor_refs(data).items():
        if not _HASH.fullmatch(digest):
            raise ValueError(f"shared tensor {name!r} is recorded as {digest!r}, not a SHA-256")
        blob_path = cache / SHARED_DIR / f"{digest}{STATE_SUFFIX}"
        try:
            blob = blob_path.read_bytes()
        except OSError as e:
            raise ValueError(f"its shared tensor {name!r} ({blob_path}) cannot be read: "
                             f"{e.strerror or e}") from None
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ValueError(f"{blob_path} does not match its SHA-256 (tensor {name!r})")
        tensors[name] = decode_tensors(blob)["t"]
    return tensors


def save_cell(path: str | Path, result: Result, state: bytes | None, stored_state: dict[str, Any],
              recount: dict[str, Any] | None = None) -> Path:
    """Write a cell: its parameters first (``state``, when given; large tensors go to the
    cache's shared store), then the JSON that names them, each atomically. A reader sees a
    whole cell or none; parameters without their JSON are recomputed and overwritten with
    the cell.

    ``state=None`` with a ``stored_state`` that names a file keeps that file as it is (a recount).
    """
    path = Path(path)
    try:
        return _save_cell(path, result, state, stored_state, recount)
    except OSError as e:  # the training must not be lost with the write: keep it elsewhere
        spare = fallback_dir() / "cells"
        _save_cell(spare / path.name, result, state, stored_state, recount)
        raise DataError(f"cannot write the cell {path} ({e.strerror or e}); it was written to "
                        f"{spare / path.name} instead",
                        f"make {path.parent} writable (or free space), then move the files "
                        f"{path.stem}.* from {spare} into it; the cell is then not computed "
                        "again") from None


def _save_cell(path: Path, result: Result, state: bytes | None, stored_state: dict[str, Any],
               recount: dict[str, Any] | None) -> Path:
    record = dict(stored_state)
    state_path = path.with_suffix(STATE_SUFFIX)
    if state is not None:
        state = _share_large_tensors(state, path.parent)
        atomic_write_bytes(state_path, state)
        record.update(file=state_path.name, sha256=hashlib.sha256(state).hexdigest(),
                      bytes=len(state))
    elif not record.get("file"):
        record["file"] = None
        state_path.unlink(missing_ok=True)  # a stale file of an earlier computation of the cell
    body = {**result.to_dict(), "stored_state": record}
    if recount is not None:
        body["recount"] = recount
    return atomic_write_json(path, body)


def read_state(cell: CachedCell) -> tuple[str, Any]:
    """``("ok", tensors)``, or ``("none", why)`` / ``("unreadable", why)``."""
    st = cell.stored_state
    if st is None:
        return "none", "the cell was written before cells kept their parameters"
    name = st.get("file")
    if not name:
        return "none", st.get("reason") or "its simulator kept no parameters"
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(STATE_SUFFIX):
        return "unreadable", f"its parameters file is recorded as {name!r}, not a file beside it"
    path = cell.path.parent / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "none", f"its parameters file {path} is missing"
    except OSError as e:
        return "unreadable", f"cannot read {path}: {e.strerror or e}"
    if st.get("sha256") and hashlib.sha256(data).hexdigest() != st["sha256"]:
        return "unreadable", f"{path} does not match the SHA-256 recorded in the cell"
    try:
        return "ok", _resolve_shared(data, cell.path.parent)
    except ValueError as e:
        return "unreadable", f"{path}: {e}"
