"""``compare``: tasks x simulators x seeds, each evaluation priced on every preset.

One *cell* is (task, simulator with its config, seed). Its evaluation is cached
as JSON under ``<out>/cache/<key>.json``, written atomically, keyed by a hash of
the task's data, the simulator's name and config, the seed and the nonvon
version, so a killed run resumes without recomputing finished cells. Pricing on
presets is cheap and redone every time (so a new or edited preset applies at once).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json, atomic_write_text, content_key
from nonvon.energy_models import Preset
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.progress import progress_bar
from nonvon.registry import Registry, registry
from nonvon.result import ROW_FIELDS, Result, library_versions
from nonvon.simulator import is_execution_option
from nonvon.tasks import Task
from nonvon.training_memo import memo_folder

__all__ = ["compare", "CompareOutcome", "QUICK_SUBSET", "LONGEST_FIRST", "write_results", "cell_key"]

QUICK_SUBSET = (2000, 500)  # train, test samples under --quick

#: The built-in simulators by the time of one cell (fit and evaluation) of their defaults on
#: full MNIST alone on an H200, longest first (docs/results/cell-times-h200). With ``jobs``
#: workers these start first, so that no long cell starts last; simulators not listed follow.
LONGEST_FIRST = ("onn-mzi", "snn-cnn", "onn-diffractive", "vqc", "snn-ttfs", "brainscales2-ttfs",
                 "snn-converted", "loihi", "truenorth", "spinnaker2", "brainscales2", "snn-mlp")


@dataclasses.dataclass
class CompareOutcome:
    results: list[Result]
    rows: list[dict[str, Any]]
    cached: int
    computed: int
    out_dir: Path | None


def cell_key(task: Task, sim, seed: int) -> str:
    config = dataclasses.asdict(sim.config)
    for f in dataclasses.fields(sim.config):
        if is_execution_option(f):  # how a cell is computed does not re-key it
            del config[f.name]
    payload = {"task": task.name, "data": task.fingerprint, "simulator": sim.name,
               "config": config, "seed": seed,
               "nonvon": library_versions().get("nonvon", "?")}
    return content_key(payload)


def _load_tasks(names: Sequence[str | Task], reg: Registry, cut: tuple[int, int] | None,
                data_dir, progress) -> tuple[list[Task], dict[str, str | dict]]:
    """The tasks, and for each named one the sweep spec that rebuilds it in a worker."""
    tasks, specs = [], {}
    for name in names:
        kwargs = {"progress": progress}
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        if isinstance(name, Task):  # the caller chose its data: used as given
            tasks.append(name)
            continue
        task = reg.task(name, **kwargs)
        spec: str | dict = name
        if cut is not None:
            n_tr, n_te = min(cut[0], len(task.y_train)), min(cut[1], len(task.y_test))
            task = task.subset(n_tr, n_te, seed=0)
            spec = {"name": name, "subset": [n_tr, n_te, 0]}
        tasks.append(task)
        specs[task.name] = spec
    return tasks, specs


def _compute_in_workers(plan, configs: dict[str, dict], specs: dict[str, str | dict], seeds,
                        out_dir: Path, jobs: int, data_dir, progress: bool, log) -> None:
    """Compute the plan's cells in ``jobs`` local worker processes, into ``out_dir``/cache,
    where the sequential pass of :func:`compare` then finds them. Cells that read a hardware
    energy counter are left to that pass: they must run alone."""
    import os

    from nonvon.sweep import run_sweep

    fits: dict[str, list[str]] = {}
    for task, sim, _ in plan:
        if not sim.measures_hardware:
            fits.setdefault(sim.name, []).append(task.name)
    groups: dict[tuple[str, ...], list[dict]] = {}  # one rectangular sweep per set of tasks
    for name, task_names in fits.items():
        groups.setdefault(tuple(task_names), []).append({"name": name, "set": configs[name]})
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # jax (the VQC) would otherwise take most of a GPU's memory in its worker at start
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    for task_names, sims in groups.items():
        run_sweep({"tasks": [specs[t] for t in task_names], "simulators": sims, "seeds": list(seeds)},
                  out_dir=out_dir, jobs=jobs, threads=max(1, (os.cpu_count() or 1) // jobs),
                  data_dir=data_dir, progress=progress, write_report=False, log=log,
                  order=lambda cell: (rank.get(cell.simulator, len(rank)), cell.task_name))


def _presets_for(sim, chosen: Sequence[str] | None, reg: Registry) -> list[Preset]:
    """Presets to price ``sim`` on: all that fit, or the chosen ones that fit (checked up front)."""
    if chosen is None:
        found = reg.presets_for(sim.paradigm, sim.op_kinds)
        if sim.native_presets:
            found = [p for p in found if p.name in sim.native_presets]
        if not found:
            raise IncompatibleError(f"no registered preset prices every op kind {sim.name} counts",
                                    "add a preset (see docs/adding-a-device.md)")
        return found
    presets = [reg.preset(p) for p in chosen]
    usable = [p for p in presets if sim.paradigm in p.paradigms and not p.can_price(sim.op_kinds)]
    if not usable:
        raise IncompatibleError(
            f"none of the presets {list(chosen)} prices {sim.name} (paradigm {sim.paradigm!r}, "
            f"op kinds {sorted(sim.op_kinds)})",
            "choose presets that price every kind it counts (`nonvon list --json` shows each "
            "preset's ops)")
    return usable


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
        quick_cfg = dict(getattr(cls, "quick", {})) if quick and cls else {}
        configs[name] = {**quick_cfg, **overrides.get(name, {})}
        sims.append(reg.simulator(name, **configs[name]))
    cut = subset or (QUICK_SUBSET if quick else None)
    loaded, specs = _load_tasks(tasks, reg, cut, data_dir, progress)
    plan, skipped = [], []
    for task in loaded:
        for sim in sims:
            try:
                sim.check_task(task)
                plan.append((task, sim, _presets_for(sim, presets, reg)))
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
    with memo_folder(cache_dir / "training" if cache_dir else None):
        outcome = _compute(plan, configs, specs, seeds, out_dir, cache_dir, jobs, data_dir,
                           progress, log)
    if out_dir is not None:
        write_results(outcome.rows, Path(out_dir), report=report)
    log(f"{outcome.computed} cell(s) computed, {outcome.cached} taken from the cache"
        + (f" in {cache_dir}" if cache_dir else ""))
    return outcome


def _compute(plan, configs, specs, seeds, out_dir, cache_dir, jobs, data_dir, progress,
             log) -> CompareOutcome:
    """Every cell of the plan, from the cache or computed (in workers first when jobs > 1)."""
    if jobs > 1:
        _compute_in_workers(plan, configs, specs, seeds, Path(out_dir), jobs, data_dir, progress, log)
    results, rows, cached, computed = [], [], 0, 0
    with progress_bar(progress) as bar:
        job = bar.add_task("compare", total=len(plan) * len(seeds), status="")
        for task, sim, sim_presets in plan:
            for seed in seeds:
                bar.update(job, status=f"{sim.name} on {task.name} (seed {seed})")
                key = cell_key(task, sim, seed)
                path = cache_dir / f"{key}.json" if cache_dir else None
                if path is not None and path.exists():
                    result = Result.load(path)
                    cached += 1
                else:
                    result = sim.fit(task, seed=seed, progress=progress).evaluate(task)
                    computed += 1
                    if path is not None:
                        result.save(path)
                results.append(result)
                # the full config travels with each row, so a report can read the device
                # settings behind a number (e.g. an optical network's photon budget)
                rows += [{**result.priced(p).modelled_row(), "sim_config": result.config}
                         for p in sim_presets]
                rows += result.measured_rows()
                bar.advance(job)
    return CompareOutcome(results, rows, cached, computed, Path(out_dir) if out_dir else None)


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


def write_results(rows: list[dict[str, Any]], out_dir: Path, *, report: bool = True) -> None:
    """results.json, results.csv and (``report``) report.md / .html and the figures, atomically."""
    from nonvon.report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json", {"schema": 1, "rows": rows})
    atomic_write_text(out_dir / "results.csv", rows_to_csv(rows))
    if report:
        write_report(rows, out_dir)


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        flat = dict(row)
        flat["energy_breakdown_j"] = json.dumps(row.get("energy_breakdown_j", {}), sort_keys=True)
        w.writerow(flat)
    return buf.getvalue()


def load_rows(results_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a results folder's results.json (JSON only: nothing is executed)."""
    path = Path(results_dir) / "results.json"
    if not path.exists():
        raise ConfigError(f"{path} does not exist", "point at a folder written by `nonvon compare`")
    try:
        data = json.loads(path.read_text())
        rows = data["rows"]
        assert isinstance(rows, list)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError):
        raise ConfigError(f"{path} is not a nonvon results file",
                          "rerun `nonvon compare` to regenerate it") from None
    return rows
