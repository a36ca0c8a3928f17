"""``compare``: tasks x simulators x seeds, each evaluation priced on every preset.

One *cell* is (task, simulator with its config, seed). Its evaluation is cached
as JSON under ``<out>/cache/<key>.json``, written atomically, keyed by a hash of
the task's data, the simulator's name and config, the seed and the nonvon
version, so a killed run resumes without recomputing finished cells. Pricing on
presets is cheap and redone every time (so a new or edited preset applies at once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json, atomic_write_text
from nonvon.energy_models import Preset
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.progress import progress_bar
from nonvon.registry import Registry, registry
from nonvon.result import ROW_FIELDS, Result, library_versions
from nonvon.tasks import Task

__all__ = ["compare", "CompareOutcome", "QUICK_SUBSET", "write_results", "cell_key"]

QUICK_SUBSET = (2000, 500)  # train, test samples under --quick


@dataclasses.dataclass
class CompareOutcome:
    results: list[Result]
    rows: list[dict[str, Any]]
    cached: int
    computed: int
    out_dir: Path | None


def cell_key(task: Task, sim, seed: int) -> str:
    payload = {"task": task.name, "data": task.fingerprint, "simulator": sim.name,
               "config": dataclasses.asdict(sim.config), "seed": seed,
               "nonvon": library_versions().get("nonvon", "?")}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _load_tasks(names: Sequence[str | Task], reg: Registry, quick: bool, data_dir,
                progress) -> list[Task]:
    tasks = []
    for name in names:
        kwargs = {"progress": progress}
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        if isinstance(name, Task):  # the caller chose its data: used as given
            tasks.append(name)
            continue
        task = reg.task(name, **kwargs)
        if quick:
            n_tr, n_te = QUICK_SUBSET
            task = task.subset(min(n_tr, len(task.y_train)), min(n_te, len(task.y_test)), seed=0)
        tasks.append(task)
    return tasks


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
            report: bool = True) -> CompareOutcome:
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

    Raises:
        UnknownNameError, ConfigError, IncompatibleError: before any training starts.
    """
    reg = reg or registry()
    overrides = overrides or {}
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
    sims = []
    for name in simulators:
        cls = reg.simulators.get(name)
        quick_cfg = dict(getattr(cls, "quick", {})) if quick and cls else {}
        sims.append(reg.simulator(name, **{**quick_cfg, **overrides.get(name, {})}))
    loaded = _load_tasks(tasks, reg, quick, data_dir, progress)
    plan = []
    for task in loaded:
        for sim in sims:
            try:
                sim.check_task(task)
                plan.append((task, sim, _presets_for(sim, presets, reg)))
            except IncompatibleError as e:
                if not every:  # a simulator named explicitly must run
                    raise
                log(f"skipping {sim.name} on {task.name}: {e}")
    if not plan:
        raise IncompatibleError("no simulator can run the tasks with the presets chosen",
                                "see the messages above; transform the task or pick presets")

    cache_dir = Path(out_dir) / "cache" if out_dir is not None else None
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
    outcome = CompareOutcome(results, rows, cached, computed, Path(out_dir) if out_dir else None)
    if out_dir is not None:
        write_results(rows, Path(out_dir), report=report)
    log(f"{computed} cell(s) computed, {cached} taken from the cache"
        + (f" in {cache_dir}" if cache_dir else ""))
    return outcome


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
