"""``compare``: tasks x simulators x seeds, each evaluation priced on every preset.

One *cell* is (task, simulator with its config, seed). Its evaluation is cached
as JSON under ``<out>/cache/<key>.json``, written atomically, keyed by a hash of
the task's data, the simulator's name and config, the seed, the nonvon
version and the simulator's code (the versions of the distributions that ship it and
its source files: an edited plugin recomputes its cells), so a killed run resumes
without recomputing finished cells. Pricing on presets is cheap and redone every
time (so a new or edited preset applies at once).

Beside each cell's JSON, ``<key>.safetensors`` keeps the trained parameters
(:meth:`Simulator.state_tensors`), so that :func:`recount` can evaluate the cell again
after a change to counting or placement without retraining it (``nonvon recount``).

A cell, its key, cache files and rows are :mod:`nonvon.cells`'; ``compare`` plans its cells
and hands them to :func:`nonvon.executors.execute`, the runner ``sweep`` uses too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json, check_writable, fallback_dir
from nonvon.cells import (
    QUICK_SUBSET,
    STATE_SUFFIX,
    CachedCell,
    Cell,
    TaskSpec,
    capture_state,
    cell_key,
    cell_rows,
    csv_columns,
    load_cell,
    load_cell_or_set_aside,
    load_rows,
    load_title,
    presets_for,
    quick_overrides,
    quick_task,
    read_state,
    rows_to_csv,
    save_cell,
    torch_threads,
    tuples,
    write_results,
)
from nonvon.context import RunContext
from nonvon.energy_models import Preset
from nonvon.errors import ConfigError, DataError, IncompatibleError, NonvonError, invalid
from nonvon.executors import execute, folder_lock
from nonvon.progress import progress_bar
from nonvon.registry import Registry, registry
from nonvon.result import Result, machine_description
from nonvon.tasks import Task

# The cell, cache and row functions live in nonvon.cells; they stay importable from here.
__all__ = ["compare", "CompareOutcome", "QUICK_SUBSET", "write_results", "cell_key",
           "CachedCell", "load_cell", "save_cell", "capture_state", "recount", "RecountOutcome",
           "csv_columns", "rows_to_csv", "load_rows"]


@dataclasses.dataclass
class CompareOutcome:
    results: list[Result]
    rows: list[dict[str, Any]]
    cached: int
    computed: int
    out_dir: Path | None


def _load_tasks(names: Sequence[str | Task], reg: Registry, cut: tuple[int, int] | None,
                data_dir, progress) -> list[tuple[Task, TaskSpec | None]]:
    """The tasks, each with the spec that rebuilds it in a worker (``None`` for a task given
    as data)."""
    tasks = []
    for name in names:
        kwargs = {"progress": progress}
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        if isinstance(name, Task):  # the caller chose its data: used as given
            tasks.append((name, None))
            continue
        task = reg.task(name, **kwargs)
        spec = TaskSpec(name)
        if cut is not None:
            task = quick_task(task, cut)
            spec = TaskSpec(name, (("subset", (len(task.y_train), len(task.y_test), 0)),))
        tasks.append((task, spec))
    return tasks


def compare(tasks: Sequence[str | Task], simulators: Sequence[str], *, presets: Sequence[str] | None = None,
            seeds: Sequence[int] = (0,), out_dir: str | Path | None = None, quick: bool = False,
            overrides: dict[str, dict[str, Any]] | None = None, data_dir=None,
            progress: bool = True, reg: Registry | None = None, log=print,
            report: bool = True, subset: tuple[int, int] | None = None,
            jobs: int = 1) -> CompareOutcome:
    """Fit and evaluate every simulator on every task and seed; price on presets.

    Args:
        tasks: registered task names, or :class:`Task` objects (e.g. a name's task after
            ``subset`` or ``downsample``), used as given (``quick`` does not subset them).
        simulators: registered names; ``["all"]`` for every simulator, skipping (with a
            message) those that cannot run a task or have no fitting preset.
        presets: preset names or TOML paths; ``None`` prices each simulator on every
            registered preset declared for its paradigm that prices all its op kinds.
        seeds: one cell per seed.
        out_dir: where results, report and cache go; ``None`` keeps everything in memory.
        quick: small budget (each simulator's ``quick`` overrides, data subset
            to ``QUICK_SUBSET``) for demos and smoke checks.
        overrides: per-simulator config overrides, ``{"gpu-mlp": {"epochs": 3}}``.
        report: with ``out_dir``, also write report.md, report.html and the figures (``False``:
            results.json and results.csv only, for a caller that writes the report itself).
        subset: ``(train, test)`` samples of each named task (a seeded random subset); under
            ``quick`` the default is ``QUICK_SUBSET``.
        jobs: compute the cells in this many local worker processes first (needs ``out_dir``
            and task names), longest simulators first; cells that measure hardware energy
            still run alone, in order.

    Raises:
        UnknownNameError, ConfigError, IncompatibleError: before any training starts.
    """
    reg = reg or registry()
    overrides = overrides or {}
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} must be a positive integer", "e.g. jobs=4 (--jobs 4)")
    if jobs > 1 and out_dir is None:
        raise ConfigError("jobs > 1 needs an output folder: the workers hand their cells over "
                          "through its cache", "pass out_dir (--out)")
    if jobs > 1 and any(isinstance(t, Task) for t in tasks):
        raise ConfigError("jobs > 1 needs registered task names: each worker loads its task",
                          "pass task names, with subset=(train, test) to cut them")
    if subset is not None and (len(subset) != 2 or min(subset) < 1):
        raise ConfigError(f"subset={subset!r} must be two positive sizes", "e.g. subset=(2000, 500)")
    seeds = check_seeds(seeds, "seeds (--seeds)")
    if out_dir is not None:
        check_writable(out_dir, "the output folder (--out)")
    every = list(simulators) == ["all"]
    if every:
        simulators = sorted(reg.simulators)
    if not simulators or not tasks or not seeds:
        raise ConfigError("nothing to compare: give at least one task, simulator and seed")
    for name in overrides:
        if name not in simulators:
            raise ConfigError(f"config overrides for {name!r}, which is not among the simulators "
                              f"compared ({', '.join(simulators)})")
    # Build everything first: a typo must fail now, not after an hour of training.
    sims, configs = [], {}
    for name in simulators:
        cls = reg.simulators.get(name)
        quick_cfg = quick_overrides(cls) if quick else {}
        configs[name] = {**quick_cfg, **overrides.get(name, {})}
        sims.append(reg.simulator(name, **configs[name]))
    cut = subset or (QUICK_SUBSET if quick else None)
    loaded = _load_tasks(tasks, reg, cut, data_dir, progress)
    plan, skipped = [], []
    for task, spec in loaded:
        for sim in sims:
            try:
                sim.check_task(task)
                chosen = presets_for(sim, presets, reg)
                plan += [(Cell.of(task, sim, seed, chosen, spec=spec, overrides=configs[sim.name],
                                  data_dir=data_dir), task, sim, chosen) for seed in seeds]
            except IncompatibleError as e:
                if not every:  # a simulator named explicitly must run
                    raise
                log(f"skipping {sim.name} on {task.name}: {e}")
                skipped.append([sim.name, task.name, e.message, e.hint or ""])
    if not plan:
        raise IncompatibleError("no simulator can run the tasks with the presets chosen",
                                "see the messages above; transform the task or pick presets")
    if out_dir is not None:
        _write_skipped_section(Path(out_dir), skipped)

    cache_dir = Path(out_dir) / "cache" if out_dir is not None else None
    # cells that train the same network alike (snn-mlp and the chips) train it once
    context = RunContext(training_memo=cache_dir / "training" if cache_dir else None)
    # compare --jobs holds the folder as a sweep does, so that a recount waits for neither
    held = folder_lock(Path(out_dir)) if jobs > 1 else contextlib.nullcontext()
    with held:
        outcome = _compute(plan, cache_dir, jobs, context, progress, log)
    if out_dir is not None:
        write_results_or_fallback(outcome.rows, Path(out_dir), report=report)
    log(f"{outcome.computed} cell(s) computed, {outcome.cached} taken from the cache"
        + (f" in {cache_dir}" if cache_dir else ""))
    return outcome


def _compute(plan, cache_dir: Path | None, jobs: int, context: RunContext, progress: bool,
             log) -> CompareOutcome:
    """Every cell of the plan, from the cache or computed: with ``jobs`` > 1 in worker
    processes first (costliest first), then here, in plan order, whatever is left (cells that
    read a hardware energy counter must run alone, and cells that failed in a worker fail
    here, with their own exception)."""
    def cached(cell: Cell):
        # a cell that fails validation is moved aside, with a notice, and computed again
        return load_cell_or_set_aside(cache_dir / f"{cell.key}.json", log) if cache_dir else None

    found = {cell.key: c for cell, *_ in plan if (c := cached(cell)) is not None}
    todo = list({cell.key: cell for cell, *_ in plan if cell.key not in found}.values())
    if jobs > 1:
        parallel = [c for c in todo if not c.measures_hardware]
        # a measuring cell trains beside the others when its fit can leave the weights in the
        # training memo; it then only loads them and measures, alone
        if context.training_memo is not None:
            # (at half its cost, so that a pooled cell sharing its training starts first and
            # the fit-only one finds the weights, or that training under way, and moves on)
            parallel += [dataclasses.replace(c, fit_only=True, cost=c.cost / 2) for c in todo
                         if c.measures_hardware and c.memoizes_training]
        execute(parallel, cache=cache_dir, failures=cache_dir.parent / "failed", executor="local",
                jobs=jobs, progress=progress, threads=max(1, (os.cpu_count() or 1) // jobs),
                context=context, log=log, name="compare")
        # what the workers filed is read back from the cache, and counted so, as a rerun would
        found.update({c.key: hit for c in parallel if (hit := cached(c)) is not None})
        todo = [c for c in todo if c.key not in found]
    ran = execute(todo, cache=cache_dir, executor="inline", threads=None,
                  built={cell.key: (task, sim) for cell, task, sim, _ in plan}, context=context,
                  progress=progress, fit_progress=progress, catch=False, log=None, name="compare")
    results, rows = [], []
    for cell, _, _, chosen in plan:
        if cell.key in ran.results:
            result, recounted = ran.results[cell.key], False
        else:
            c = found[cell.key]
            result, recounted = c.result, c.recount is not None
        results.append(result)
        rows += cell_rows(result, chosen, cell, recounted=recounted)
    return CompareOutcome(results, rows, len(found), ran.computed,
                          cache_dir.parent if cache_dir else None)


def check_seeds(seeds: Any, where: str) -> list[int]:
    """Seeds as a list: integers >= 0 (NumPy's generators take no negative seed), each once
    (a repeated seed would repeat rows and skew every mean over seeds)."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise invalid(where, f"{seeds!r} is not a list", "a list of integers >= 0",
                      "e.g. seeds=[0, 1, 2] (--seeds 0,1,2)")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise invalid(where, f"seed {s!r} is not an integer >= 0", "integers >= 0",
                          "e.g. seeds=[0, 1, 2] (--seeds 0,1,2)")
    repeated = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if repeated:
        raise invalid(where, f"{list(seeds)} repeats seed(s) {repeated}", "each seed once",
                      f"drop the repeats: {sorted(set(seeds))}")
    return list(seeds)


def write_results_or_fallback(rows: list[dict[str, Any]], out_dir: Path, *,
                              report: bool = True) -> None:
    """:func:`write_results`; when that fails (a full disk, a folder made read-only during
    the run), results.json and results.csv go to a new folder under
    :func:`nonvon._io.fallback_dir` instead, and the error names it: the training is not lost.

    Raises:
        DataError: the results could not be written to ``out_dir``.
    """
    try:
        write_results(rows, out_dir, report=report)
    except OSError as e:
        spare = fallback_dir() / f"{out_dir.name or 'results'}-{time.strftime('%Y%m%dT%H%M%S')}"
        n = 1
        while spare.exists():
            spare = spare.with_name(f"{spare.name.rsplit('~', 1)[0]}~{n}")
            n += 1
        write_results(rows, spare, report=False)
        raise DataError(f"cannot write the results to {out_dir} ({e.strerror or e}); they were "
                        f"written to {spare} instead (results.json, results.csv)",
                        f"make {out_dir} writable (or free space), then copy them there and run "
                        f"`nonvon report {out_dir}`, or rerun the same compare: its cached cells "
                        "are not computed again") from None


_SKIPPED_SECTION = "skipped.section.json"


def _write_skipped_section(out_dir: Path, skipped: list[list[str]]) -> None:
    """A report section listing what ``--sim all`` could not run, so the report says so."""
    path = out_dir / _SKIPPED_SECTION
    if not skipped:
        path.unlink(missing_ok=True)  # none now: a stale list must not stay in the report
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"title": "Not run", "order": 10, "blocks": [
        {"p": "Simulators that `--sim all` includes but that cannot run a task as given; "
              "a transformed task (for example downsampled) brings them in."},
        {"table": {"header": ["simulator", "task", "why", "fix"], "rows": skipped}}]})


# -- recount: evaluate cached cells again from their parameters --------------------------------
_TRANSFORM = (
    (re.compile(r"subset(None|\d+),(None|\d+),s(\d+)"),
     lambda t, m: t.subset(*(None if v == "None" else int(v) for v in m.groups()[:2]),
                           seed=int(m.group(3)))),
    (re.compile(r"ds(\d+)"), lambda t, m: t.downsample(int(m.group(1)))),
    (re.compile(r"classes(\d+(?:,\d+)*)"),
     lambda t, m: t.select_classes(*(int(v) for v in m.group(1).split(",")))),
    (re.compile(r"pca(\d+)"), lambda t, m: t.pca(int(m.group(1)))),
)


def _load_base_task(name: str, reg: Registry, data_dir) -> Task:
    """A registered task as found here, without downloading: recount is meant to take seconds,
    and data that is not here is reported rather than silently replaced."""
    import inspect

    loader = reg.tasks[name]
    kwargs: dict[str, Any] = {"progress": False, "download": False}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    try:
        params = inspect.signature(loader).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in params}
    except (TypeError, ValueError):  # no signature to read: pass what the design fixes
        pass
    notice = io.StringIO()
    with contextlib.redirect_stderr(notice):  # mnist's "using mnist-5k instead" would mislead here
        task = loader(**kwargs)
    if task.name != name:
        said = notice.getvalue().strip().splitlines()
        raise DataError(f"the data of task {name!r} is not available here"
                        + (f" ({said[0]})" if said else f" (its loader gave {task.name!r})"),
                        "put its files where --data-dir (or NONVON_DATA) points, then rerun recount")
    return task


def rebuild_task(name: str, fingerprint: str | None, reg: Registry, data_dir=None) -> Task:
    """The task a cell was computed on, from its name (``base|transform|...``), checked against
    the data fingerprint the cell recorded.

    Raises:
        DataError: the task is not registered here, its data is missing, a transform in the
            name cannot be replayed, or the data differs from the cell's.
    """
    base, *steps = name.split("|")
    if base not in reg.tasks:
        raise DataError(f"task {name!r}: {base!r} is not a registered task here (the cell was "
                        "computed on data passed to compare directly)",
                        "recount it where that task is registered, or recompute the cell")
    task = _load_base_task(base, reg, data_dir)
    for step in steps:
        for pattern, apply in _TRANSFORM:
            m = pattern.fullmatch(step)
            if m:
                task = apply(task, m)
                break
        else:
            raise DataError(f"task {name!r}: recount cannot replay the transform {step!r}",
                            "recompute the cell with `nonvon compare`")
    if task.name != name:
        raise DataError(f"task {name!r} rebuilt as {task.name!r}", "recompute the cell")
    if fingerprint and task.fingerprint != fingerprint:
        raise DataError(f"task {name!r} here is not the data the cell was computed on "
                        f"(data fingerprint {task.fingerprint[:12]}, the cell's {fingerprint[:12]})",
                        "point --data-dir (or NONVON_DATA) at the files the cell used")
    return task


@dataclasses.dataclass
class RecountOutcome:
    """What :func:`recount` did. ``no_parameters``, ``unreadable`` and ``failed`` hold
    ``(cell label, why)``; ``rows`` is the rewritten results.json (``None`` when the folder
    has none)."""

    recounted: list[str]
    changed: list[str]
    no_parameters: list[tuple[str, str]]
    unreadable: list[tuple[str, str]]
    failed: list[tuple[str, str]]
    rows: list[dict[str, Any]] | None
    results_dir: Path | None
    cache_dir: Path
    stale_rows: int
    wall_s: float
    cells: dict[str, CachedCell] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def counts(self) -> dict[str, int]:
        return {"recounted": len(self.recounted), "changed": len(self.changed),
                "no_parameters": len(self.no_parameters), "unreadable": len(self.unreadable),
                "failed": len(self.failed)}


def _folders(folder: str | Path) -> tuple[Path, Path | None]:
    """(cache folder, results folder or None) of a results folder or of its cache folder."""
    folder = Path(folder)
    if not folder.exists():
        raise ConfigError(f"{folder} does not exist",
                          "give a results folder written by `nonvon compare` or `nonvon sweep`, "
                          "or its cache folder")
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder",
                          "give a results folder (with cache/ inside) or its cache folder")
    if (folder / "cache").is_dir():
        return folder / "cache", folder
    if (folder / "results.json").exists():
        raise ConfigError(f"{folder} has no cache folder, so no cells to recount",
                          "recount a folder that `nonvon compare --out` wrote (it keeps cache/)")
    results = folder.parent if (folder.parent / "results.json").is_file() else None
    return folder, results


def _identity(task: str, simulator: str, seed: Any, config: Any) -> str:
    return json.dumps([task, simulator, seed, config], sort_keys=True, default=str)


def _match_rows(rows: list[dict[str, Any]], cells: dict[str, CachedCell], log
                ) -> list[CachedCell | None]:
    """The cell behind each results.json row: by its ``cell`` key, else (rows of older
    compare runs) by task, simulator, seed and full config."""
    by_identity: dict[str, list[CachedCell]] = {}
    for c in cells.values():
        r = c.result
        by_identity.setdefault(_identity(r.task, r.simulator, r.seed, r.config), []).append(c)
    out = []
    for row in rows:
        key = row.get("cell")
        if isinstance(key, str) and key in cells:
            out.append(cells[key])
            continue
        found = by_identity.get(_identity(row.get("task"), row.get("simulator"), row.get("seed"),
                                          row.get("sim_config")), [])
        if len(found) > 1:  # cells of the same config under another nonvon version or data
            found = sorted(found, key=lambda c: c.path.stat().st_mtime_ns)[-1:]
            log(f"several cached cells match the row {row.get('task')} / {row.get('simulator')} / "
                f"seed {row.get('seed')}; using the newest, {found[0].path.name}")
        out.append(found[0] if found else None)
    return out


def _resolve_presets(rows, matched, reg: Registry, extra: dict[str, Preset]) -> dict[str, Preset]:
    names = {r["preset"] for r, c in zip(rows, matched, strict=True)
             if c is not None and r.get("kind") == "modelled"}
    out = {}
    for name in sorted(names):
        if name in extra:
            out[name] = extra[name]
            continue
        try:
            out[name] = reg.preset(name)
        except NonvonError as e:
            raise type(e)(f"results.json prices cells on preset {name!r}: {e.message}",
                          "pass its TOML file with --preset PATH (a preset given to compare by "
                          "path is not registered)") from None
    return out


def _recount_cell(cell: CachedCell, tensors, reg: Registry, tasks: dict[str, Any], data_dir
                  ) -> tuple[Result, dict[str, Any], str]:
    """Evaluate ``cell`` again from its parameters; the new result, its recount record and
    the cell's key under the code here (another key when the simulator's code changed since
    the cell was computed: the recounted cell is filed under it)."""
    old, st = cell.result, cell.stored_state
    task_s = 0.0
    which = (old.task, st.get("task_fingerprint"))
    if which not in tasks:  # loaded once for all its cells, timed apart from them
        t0 = time.perf_counter()
        try:
            tasks[which] = rebuild_task(*which, reg, data_dir)
        except NonvonError as e:
            tasks[which] = e
        task_s = time.perf_counter() - t0
    task = tasks[which]
    if isinstance(task, NonvonError):
        raise task
    start = time.perf_counter()
    config = {k: tuples(v) for k, v in old.config.items()}
    sim = reg.simulator(old.simulator, **config)
    key = cell_key(task, sim, old.seed)
    # A hardware energy reading is not a count, and reading it again (NVML windows take
    # seconds) would make a recount as slow as a fit: the cell's own readings are kept.
    quiet = sim.measures_hardware and isinstance(config.get("measure_energy"), bool)
    if quiet:
        sim = reg.simulator(old.simulator, **{**config, "measure_energy": False})
    threads = st.get("torch_threads")
    with torch_threads(threads if isinstance(threads, int) and threads > 0 else None):
        sim.load_state_tensors(tensors, task, seed=old.seed, fit_wall_s=old.fit_wall_s)
        new = sim.evaluate(task, split=st.get("split") or "test", limit=st.get("limit"))
    wall = time.perf_counter() - start
    # The fit, and the original evaluation's machine and timings, stay as they were (they
    # describe one run on one machine); what this evaluation took is in the recount record.
    result = dataclasses.replace(
        new, fit_wall_s=old.fit_wall_s, sim_wall_s=old.sim_wall_s, machine=old.machine,
        measurements=new.measurements or old.measurements,
        config={**new.config, **({"measure_energy": config["measure_energy"]} if quiet else {})},
        metrics={**old.metrics, **new.metrics})  # e.g. training_shared describes the fit
    changed = (result.accuracy != old.accuracy or result.ledger.to_dict() != old.ledger.to_dict())
    record = {"wall_s": wall, "eval_wall_s": new.sim_wall_s, "task_load_s": task_s,
              "machine": machine_description(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "changed": changed,
              "previous": {"accuracy": old.accuracy, "ledger": old.ledger.to_dict(),
                           "versions": dict(old.versions),
                           **({"cell": cell.key} if key != cell.key else {})}}
    return result, record, key


def _repriced_rows(rows, matched, presets: dict[str, Preset]) -> tuple[list[dict[str, Any]], int]:
    """results.json's rows, each priced again from its (recounted) cell; rows whose cell is
    gone are kept as they were and counted."""
    out, stale = [], 0
    for row, cell in zip(rows, matched, strict=True):
        if cell is None:
            out.append(row)
            stale += 1
            continue
        extra = {"cell": cell.key, **({"recounted": True} if cell.recount is not None else {})}
        result = cell.result
        if row.get("kind") == "modelled":
            try:
                new = result.priced(presets[row["preset"]]).modelled_row()
            except NonvonError as e:
                stale = "" if cell.recount is not None else (
                    "; this cell's ledger was not recounted (no parameters), so it predates the "
                    "preset's rules: recompute it (delete its JSON and rerun compare)")
                raise type(e)(f"cell {cell.label} ({cell.path.name}) on preset {row['preset']!r}: "
                              f"{e.message}", (e.hint or "") + stale) from None
            if "sim_config" in row:
                new["sim_config"] = result.config
            out.append({**row, **new, **extra})
            continue
        measured = [m for m in result.measured_rows() if m["preset"] == row.get("preset")]
        if measured:
            out.append({**row, **measured[0], **extra})
        else:
            out.append(row)
            stale += 1
    return out, stale


def _save_recounted(cell_path: Path, old: Path, cell: CachedCell) -> None:
    """Write a recounted cell back; when the simulator's code changed since it was computed,
    under its key for the code here (``cell_path``), its parameters file renamed with it, so
    that ``compare`` finds it instead of training again. The new files are written before the
    old ones go: a crash leaves the cell under one key or the other."""
    stored = dict(cell.stored_state)
    if cell_path != old and stored.get("file") == old.with_suffix(STATE_SUFFIX).name:
        target = cell_path.with_suffix(STATE_SUFFIX)
        target.unlink(missing_ok=True)
        try:
            os.link(old.with_suffix(STATE_SUFFIX), target)
        except OSError:
            shutil.copy2(old.with_suffix(STATE_SUFFIX), target)
        stored["file"] = target.name
    save_cell(cell_path, cell.result, None, stored, recount=cell.recount)
    cell.stored_state = stored
    if cell_path != old:
        old.unlink(missing_ok=True)
        if stored.get("file") != old.with_suffix(STATE_SUFFIX).name:
            old.with_suffix(STATE_SUFFIX).unlink(missing_ok=True)


def recount(folder: str | Path, *, data_dir=None, presets: Sequence[str] = (), progress: bool = True,
            reg: Registry | None = None, log: Callable[[str], None] = print,
            simulators: Sequence[str] | None = None) -> RecountOutcome:
    """Evaluate every cached cell of a results folder again from its stored parameters (no
    training), write each back, then price every row of results.json again and rewrite
    results.json, results.csv and (when the folder has one) the report.

    Args:
        folder: a results folder written by ``compare`` or ``sweep``, or its ``cache`` folder
            (then results.json beside it, if any, is rewritten).
        data_dir: where to look for dataset files (nothing is downloaded).
        presets: preset TOML paths for rows priced on a preset that is not registered.
        progress: a progress bar over the cells.
        simulators: re-evaluate only the cells of these simulators (``None``: every cell); the
            others keep their ledgers, and every row is priced again either way.

    Cells without parameters, with unreadable parameters, or whose recount fails (for example
    their data is not available here) are reported and left as they were.

    Raises:
        ConfigError, DataError, UnknownNameError: not a folder, no cells, an unreadable cell or
            results.json, an unknown preset; raised before anything is written.
    """
    from nonvon.energy_models import load_preset

    reg = reg or registry()
    start = time.perf_counter()
    cache_dir, results_dir = _folders(folder)
    paths = sorted(p for p in cache_dir.glob("*.json") if p.is_file())
    if not paths:
        raise ConfigError(f"no cached cells in {cache_dir}",
                          "recount a folder that `nonvon compare --out` or `nonvon sweep` wrote")
    cells = {p.stem: load_cell(p) for p in paths}  # an unreadable cell stops us here
    if simulators is not None:
        present = {c.result.simulator for c in cells.values()}
        unknown = sorted(set(simulators) - present)
        if unknown:
            raise ConfigError(f"no cell of {', '.join(unknown)} in {cache_dir} (it has "
                              f"{', '.join(sorted(present))})", "name simulators the folder has")
    rows = load_rows(results_dir) if results_dir is not None else None
    extra = {}
    for path in presets:
        p = load_preset(path)
        extra[p.name] = p
    matched = _match_rows(rows, cells, log) if rows is not None else []
    priced_on = _resolve_presets(rows, matched, reg, extra) if rows is not None else {}

    out = RecountOutcome([], [], [], [], [], None, results_dir, cache_dir, 0, 0.0, cells)
    tasks: dict[str, Any] = {}
    done: dict[str, CachedCell] = {}
    # a sweep (or compare --jobs) writing into the folder holds .sweep.lock: wait for none, fail
    # at once; a folder without one gets none, so that a recount that fails writes nothing
    lock_dir = results_dir or cache_dir
    locked = folder_lock(lock_dir) if (lock_dir / ".sweep.lock").exists() else contextlib.nullcontext()
    with locked, progress_bar(progress) as bar:
        chosen = {k: c for k, c in cells.items()
                  if simulators is None or c.result.simulator in simulators}
        job = bar.add_task("recount", total=len(chosen), status="")
        for key, cell in chosen.items():
            bar.update(job, status=cell.label)
            status, got = read_state(cell)
            if status == "none":
                out.no_parameters.append((cell.label, got))
            elif status == "unreadable":
                out.unreadable.append((cell.label, got))
            else:
                try:
                    result, record, new_key = _recount_cell(cell, got, reg, tasks, data_dir)
                except Exception as e:  # noqa: BLE001 - reported per cell; the others go on
                    why = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
                    hint = getattr(e, "hint", None)
                    out.failed.append((cell.label, why + (f" (fix: {hint})" if hint else "")))
                else:
                    done[key] = CachedCell(cell.path.with_name(f"{new_key}.json"), result,
                                           cell.stored_state, record)
                    out.recounted.append(cell.label)
                    if record["changed"]:
                        out.changed.append(cell.label)
            bar.advance(job)
        cells.update(done)
        if rows is not None:
            # priced before anything is written: a preset that cannot price a recounted
            # ledger leaves the folder as it was
            matched = [cells[c.key] if c is not None else None for c in matched]
            out.rows, out.stale_rows = _repriced_rows(rows, matched, priced_on)
        for key, cell in done.items():
            _save_recounted(cell_path=cell.path, old=cache_dir / f"{key}.json", cell=cell)
        if out.rows is not None:
            write_results(out.rows, results_dir, report=(results_dir / "report.md").exists(),
                          title=load_title(results_dir))
    out.wall_s = time.perf_counter() - start
    return out
