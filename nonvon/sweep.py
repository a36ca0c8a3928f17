"""``sweep``: a grid of tasks x simulator configs x seeds, each cell an independent job.

A grid is a TOML file, or the same structure as a dict (its form: :mod:`nonvon.grids` and
docs/sweeps.md), parsed and planned by :mod:`nonvon.grids`. One *cell*
(:class:`nonvon.cells.Cell`: task, simulator with one config, seed) is exactly a cell of
:func:`nonvon.compare.compare`, with the same key (:func:`~nonvon.cells.cell_key`), the
same result file, ``<out>/cache/<key>.json``, and the same rows: a cell computed by either
command is reused by the other. Presets only price a cell's ledger, which is cheap,
so they are not separate jobs: each finished cell is priced on every preset of the
grid that fits it when the summary is written.

Cells run (:mod:`nonvon.executors`) in worker processes (``executor="local"``), on a Ray
cluster (``executor="ray"``) or in this process (``executor="inline"``). Workers compute
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

import dataclasses
import json
import os
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json
from nonvon.cells import Cell, TaskSpec, cell_rows, jsonable, load_cell, run_cell, write_results
from nonvon.errors import ConfigError, DataError
from nonvon.executors import EXECUTORS, WorkersDiedError, execute, folder_lock, require_ray
from nonvon.grids import MAX_CELLS, Grid, Plan, SimSpec, _is_int, load_grid, plan_sweep

__all__ = [
    "EXECUTORS", "MAX_CELLS", "Cell", "Grid", "SimSpec", "SweepOutcome", "TaskSpec",
    "WorkersDiedError", "load_grid", "plan_sweep", "print_summary", "run_cell", "run_sweep",
]

DONE, FAILED, PENDING = "done", "failed", "pending"
PREVIEW_CELLS = 20  # cells a dry run of a grid above the size limit plans and lists


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
    total: int | None = None  # cells in the grid; more than ``cells`` for a dry-run preview
    note: str = ""  # why a dry run lists only a preview

    @property
    def failed(self) -> list[CellStatus]:
        return [c for c in self.cells if c.status == FAILED]

    @property
    def ok(self) -> bool:
        """Every cell of the grid is done (none failed, none left to run)."""
        return (all(c.status == DONE for c in self.cells)
                and (self.total is None or self.total == len(self.cells)))

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


def _status(out: Path | None, cell: Cell) -> CellStatus:
    if out is None:
        return CellStatus(cell, PENDING)
    if _result_path(out, cell.key).exists():
        return CellStatus(cell, DONE)
    fp = _failure_path(out, cell.key)
    if fp.exists():
        return CellStatus(cell, FAILED, _read_json(fp))
    return CellStatus(cell, PENDING)


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
              max_cells: int | None = None, reg=None,
              log: Callable[[str], None] = print) -> SweepOutcome:
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
        dry_run: plan and report statuses only; nothing is run or written. A grid above
            the size limit is not refused: its first cells are planned and listed, with
            the count (``outcome.total``) and the reason in ``outcome.note``.
        max_cells: refuse a grid of more cells (default: the grid's ``max_cells``, else
            :data:`MAX_CELLS`, 100,000), counted before anything is built.
        write_report: also write results.csv, report.md and the figures (results.json
            is always written).
        reg: a registry (default: the process-wide one); the ``inline`` executor uses it,
            worker processes discover their own.

    Parallel executors start the costliest cells first (each simulator's ``cost_hint``), so
    that workers finish together rather than wait on one late cell.

    Returns:
        The outcome; cells that failed are in ``outcome.failed`` and ``outcome.ok`` is false
        (check it: a failed cell does not raise).

    Raises:
        NonvonError: bad grid, names, configs, executor options, size or output folder;
            raised before anything is written.
        WorkersDiedError: the local worker processes die before they can take a cell (the
            environment is broken, not a cell); cells finished before are kept and
            sweep.json is written first.
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
        require_ray()
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
    if max_cells is not None and (not _is_int(max_cells) or max_cells < 1):
        raise ConfigError(f"max_cells={max_cells!r} must be a positive integer",
                          f"e.g. max_cells=1000000 (default {MAX_CELLS:,})")
    _check_out(out)
    reg = reg or registry()
    note = ""
    if dry_run:
        try:
            grid.check_size(max_cells)
        except ConfigError as e:
            note = str(e)
    plan = plan_sweep(grid, reg, data_dir=data_dir, max_cells=max_cells,
                      limit=PREVIEW_CELLS if note else None)
    statuses = [_status(out, c) for c in plan.cells]
    todo = [s.cell for s in statuses
            if s.status == PENDING or (retry_failed and s.status == FAILED)]
    if dry_run:
        return SweepOutcome(statuses, [], 0, 0, out, total=plan.total, note=note)

    with folder_lock(out):
        _write_manifest(out, grid, statuses)
        try:
            ran = execute(todo, cache=out / "cache", failures=out / "failed",
                          executor=executor, jobs=jobs, threads=threads, address=address,
                          reg=reg, built=plan.built, progress=progress, log=log, name="sweep")
        except WorkersDiedError:
            _write_manifest(out, grid, [_status(out, c) for c in plan.cells])
            raise
        computed, failed_now = ran.computed, ran.failed
        statuses = [_status(out, c) for c in plan.cells]
        rows = summary_rows(out, statuses, plan)
        _write_manifest(out, grid, statuses)
        if rows and write_report:
            write_results(rows, out, title=grid.title)
        else:  # no figures of nothing
            atomic_write_json(out / "results.json", {"schema": 1, "rows": rows,
                                                     **({"title": grid.title} if grid.title else {})})
    outcome = SweepOutcome(statuses, rows, computed, len(plan.cells) - len(todo), out,
                           total=plan.total)
    c = outcome.counts
    log(f"{computed} cell(s) computed, {outcome.cached} already finished"
        f"{f', {failed_now} failed now' if failed_now else ''}; "
        f"{c[DONE]} done, {c[FAILED]} failed of {len(plan.cells)} in {out}")
    if failed_now and failed_now == len(todo) > 1:
        errors = {(s.failure or {}).get("error") for s in outcome.failed}
        log(f"every cell run now failed ({', '.join(sorted(map(str, errors)))}): this is "
            "likely not one cell's problem; see the first traceback in "
            f"{out / 'failed'}")
    return outcome


def summary_rows(out: Path, statuses: list[CellStatus], plan: Plan) -> list[dict[str, Any]]:
    """results.json rows of the finished cells, in plan order (whatever order they ran in).

    Rows are those of ``compare`` (:func:`nonvon.cells.cell_rows`).
    """
    rows = []
    for s in statuses:
        if s.status != DONE:
            continue
        cached = load_cell(_result_path(out, s.cell.key))
        rows += cell_rows(cached.result, [plan.presets[p] for p in s.cell.presets], s.cell,
                          recounted=cached.recount is not None)
    return rows


def _write_manifest(out: Path, grid: Grid, statuses: list[CellStatus]) -> None:
    cells = []
    for s in statuses:
        entry = {"key": s.cell.key, "task": s.cell.task_name, "simulator": s.cell.simulator,
                 "config": jsonable(s.cell.overrides), "seed": s.cell.seed,
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
    from rich.markup import escape
    from rich.table import Table

    from nonvon.report import format_si

    con = console or Console()
    t = Table("task", "simulator", "config", "preset", "seeds", "accuracy (mean ± sd)",
              "energy/inference", "latency/inference", title="nonvon sweep")
    for g in summarize(outcome):
        t.add_row(escape(g["task"]), escape(g["simulator"]), escape(g["config"] or "-"),
                  escape(g["preset"]), str(g["n_seeds"]),
                  f"{100 * g['accuracy_mean']:.2f} ± {100 * g['accuracy_sd']:.2f}%",
                  format_si(g["energy_mean_j"], "J"), format_si(g["latency_mean_s"], "s"))
    con.print(t)
    failed = outcome.failed
    if failed:
        t = Table("cell", "error", "traceback", title=f"[red]{len(failed)} failed cell(s)")
        for s in failed:
            f = s.failure or {}
            t.add_row(escape(s.cell.label), escape(f"{f.get('error')}: {f.get('message')}"),
                      str(_failure_path(outcome.out_dir, s.cell.key)) if outcome.out_dir else "")
        con.print(t)
    pending = [s for s in outcome.cells if s.status == PENDING]
    if pending:
        con.print(f"{len(pending)} cell(s) not run yet", style="yellow")


def print_plan(outcome: SweepOutcome, console=None, *, show: int = PREVIEW_CELLS) -> None:
    """``--dry-run``: the first ``show`` cells and whether each is done, failed or still to
    run, then the count of all cells by status."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = console or Console()
    total = outcome.total if outcome.total is not None else len(outcome.cells)
    shown = outcome.cells[:show]
    t = Table("cell", "key", "presets", "status",
              title=f"plan: {total:,} cell(s)"
              + (f", the first {len(shown)} listed" if len(shown) < total else ""))
    for s in shown:
        t.add_row(escape(s.cell.label), s.cell.key, escape(", ".join(s.cell.presets)), s.status)
    con.print(t)
    if outcome.note:
        con.print(escape(f"not runnable as it is: {outcome.note}"), style="yellow")
        return
    counts = {st: sum(s.status == st for s in outcome.cells) for st in (DONE, FAILED, PENDING)}
    con.print(f"{total:,} cell(s): {counts[DONE]:,} done, {counts[FAILED]:,} failed, "
              f"{counts[PENDING]:,} still to run")
