"""Grids: the cells of tasks x simulator configs x seeds, from a TOML file or a dict.

A grid (docs/sweeps.md)::

    tasks = ["digits", { name = "digits", downsample = 4 }]
    seeds = [0, 1, 2, 3]
    presets = ["cmos-45nm", "cmos-7nm"]    # optional: default, every preset that fits

    [[simulators]]
    name = "gpu-mlp"
    set = { hidden = [16], device = "cpu" }     # fixed options
    grid = { epochs = [2, 4] }                  # swept options: every combination

:func:`load_grid` / :meth:`Grid.from_dict` check its form; :func:`plan_sweep` checks every
name, config, task and preset against the registry and lists its :class:`~nonvon.cells.Cell`.
Planning is linear in the number of cells, and a grid of more than :data:`MAX_CELLS` cells
(counted before anything is built) is refused unless its ``max_cells`` raises the limit.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nonvon.cells import Cell, TaskSpec, presets_for, quick_overrides, tuples
from nonvon.errors import ConfigError, NonvonError

__all__ = ["MAX_CELLS", "Grid", "Plan", "SimSpec", "TaskSpec", "load_grid", "parse_task",
           "plan_sweep"]

MAX_CELLS = 100_000
"""Grids above this many cells are refused unless ``max_cells`` (grid key or argument) allows
them: a typo such as one more swept option multiplies a sweep, and planning a million cells
takes minutes before the first runs."""

_GRID_KEYS = ("description", "tasks", "simulators", "seeds", "presets", "quick", "out",
              "max_cells")
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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_task(item: Any, where: str) -> TaskSpec:
    """A grid's task entry (a name or a table of transforms) as a :class:`TaskSpec`."""
    if isinstance(item, str) and item:
        return TaskSpec(item)
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
        ops.append((op, tuples(value)))
    return TaskSpec(name, tuple(ops))



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
        return cls(name, tuple((k, tuples(v)) for k, v in fixed.items()),
                   tuple((k, tuple(tuples(x) for x in v)) for k, v in swept.items()))

    def configs(self) -> list[dict[str, Any]]:
        """Every combination of the swept values, each merged with the fixed options."""
        return list(self.iter_configs())

    def iter_configs(self) -> Iterator[dict[str, Any]]:
        """:meth:`configs` one at a time, in the same order."""
        names = [k for k, _ in self.grid]
        for combo in itertools.product(*(v for _, v in self.grid)):
            yield {**dict(self.set), **dict(zip(names, combo, strict=True))}

    @property
    def n_configs(self) -> int:
        """How many configs :meth:`configs` lists (without listing them)."""
        return math.prod(len(v) for _, v in self.grid)


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
    max_cells: int | None = None

    @property
    def title(self) -> str | None:
        """The report's title: the description's first non-blank line, or ``None`` when the
        grid has no description (the report keeps its default title)."""
        return next((line.strip() for line in self.description.splitlines() if line.strip()),
                    None)

    @property
    def size(self) -> int:
        """The number of cells (tasks x simulator configs x seeds), counted, not listed."""
        return len(self.tasks) * sum(s.n_configs for s in self.simulators) * len(self.seeds)

    def check_size(self, max_cells: int | None = None) -> None:
        """Refuse a grid of more cells than ``max_cells`` (default: the grid's own
        ``max_cells``, else :data:`MAX_CELLS`).

        Raises:
            ConfigError: with the count, its factors and how to raise the limit.
        """
        limit = max_cells or self.max_cells or MAX_CELLS
        n = self.size
        if n > limit:
            configs = sum(s.n_configs for s in self.simulators)
            raise ConfigError(
                f"grid {self.source} has {n:,} cells ({len(self.tasks)} task(s) x {configs:,} "
                f"simulator config(s) x {len(self.seeds)} seed(s)), more than the limit of "
                f"{limit:,}",
                f"sweep fewer values; or, if you mean it, add max_cells = {n} to the grid (or "
                f"pass max_cells={n} to run_sweep); `--dry-run` lists the first cells")

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
        max_cells = data.get("max_cells")
        if max_cells is not None and (not _is_int(max_cells) or max_cells < 1):
            raise ConfigError(f"{where}: max_cells = {max_cells!r} must be a positive integer",
                              f"write max_cells = 1000000 to allow a sweep above {MAX_CELLS:,} "
                              "cells (or leave it out)")
        return cls(tuple(parse_task(t, f"{where}, tasks[{i}]") for i, t in enumerate(tasks)),
                   tuple(SimSpec.parse(s, f"{where}, simulators[{i}]") for i, s in enumerate(sims)),
                   tuple(seeds), tuple(presets) if presets is not None else None, quick,
                   Path(_resolve(out, base)) if out else None, description, source, max_cells)


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
def _where_error(err: NonvonError, where: str) -> NonvonError:
    """The same error, its message prefixed with where in the grid it arose."""
    return type(err)(f"{where}: {err.message}", err.hint)


def _hashable(v: Any) -> Any:
    try:
        hash(v)
    except TypeError:  # an inline table: compare by its JSON form
        return json.dumps(v, sort_keys=True, default=repr)
    return v


def _config_labels(entries: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Per simulator, name only the options whose value differs between its configs.

    One pass to collect each option's distinct values (and how many configs set it), one
    to write the labels: linear in the number of configs.
    """
    values: dict[str, dict[str, set]] = {}
    present: dict[str, dict[str, int]] = {}
    total: dict[str, int] = {}
    for sim, cfg in entries:
        total[sim] = total.get(sim, 0) + 1
        seen, count = values.setdefault(sim, {}), present.setdefault(sim, {})
        for k, v in cfg.items():
            seen.setdefault(k, set()).add(_hashable(v))
            count[k] = count.get(k, 0) + 1
    varying = {sim: {k for k, vs in values[sim].items()
                     if len(vs) > 1 or present[sim][k] < total[sim]} for sim in values}
    return [",".join(f"{k}={_short(v)}" for k, v in cfg.items() if k in varying[sim])
            for sim, cfg in entries]


def _short(v: Any) -> str:
    return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)


@dataclasses.dataclass
class Plan:
    """The cells of a grid, the presets they are priced on, and what the planner built:
    ``built`` maps each cell key to its ``(task, simulator)``, so that an inline run
    rebuilds nothing."""

    cells: list[Cell]
    presets: dict[str, Any]  # name -> Preset
    tasks: dict[TaskSpec, Any] = dataclasses.field(default_factory=dict)  # spec -> Task
    built: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict, repr=False)
    total: int | None = None  # cells in the grid (more than ``cells`` when only a preview)


def plan_sweep(grid: Grid, reg=None, *, data_dir=None, max_cells: int | None = None,
               limit: int | None = None) -> Plan:
    """Check every name, config, task and preset of ``grid`` and list its cells.

    Every task is loaded and every simulator config built here, before any
    training, so a typo fails in seconds, not after the first hour of a sweep.
    Each config is built once (not once per task and seed), and the work is linear in the
    number of cells.

    Args:
        max_cells: refuse a grid of more cells (default: the grid's ``max_cells``, else
            :data:`MAX_CELLS`); see :meth:`Grid.check_size`.
        limit: plan only the first ``limit`` cells, in order (a preview: ``--dry-run`` of a
            large grid); the size guard does not apply, and later configs are not checked.

    Raises:
        UnknownNameError, ConfigError, IncompatibleError, DataError, PresetError: with
            the grid location in the message.
    """
    from nonvon.registry import registry

    if limit is None:
        grid.check_size(max_cells)
    reg = reg or registry()
    where = f"grid {grid.source}"
    tasks = []
    for i, spec in enumerate(grid.tasks):
        try:
            tasks.append(spec.build(reg, quick=grid.quick, data_dir=data_dir))
        except NonvonError as e:
            raise _where_error(e, f"{where}, tasks[{i}] ({spec.name})") from None
    labels = _spec_labels(grid, reg)
    built_entries: list[tuple[int, str, dict[str, Any], Any, list, str]] = []
    complete = False

    def entries() -> Iterator[tuple[int, str, dict[str, Any], Any, list, str]]:
        """Each config built once, on first use (so a preview builds only what it shows)."""
        nonlocal complete
        if complete:
            yield from built_entries
            return
        built_entries.clear()
        label_of = iter(labels)
        for i, spec in enumerate(grid.simulators):
            w = f"{where}, simulators[{i}] ({spec.name})"
            quick_cfg = quick_overrides(reg.simulators.get(spec.name)) if grid.quick else {}
            for cfg in spec.iter_configs():
                overrides = {**quick_cfg, **cfg}
                try:
                    sim = reg.simulator(spec.name, **overrides)
                    presets = presets_for(sim, grid.presets, reg)
                except NonvonError as e:
                    raise _where_error(e, w) from None
                entry = (i, spec.name, overrides, sim, presets, next(label_of))
                built_entries.append(entry)
                yield entry
        complete = True

    cells: list[Cell] = []
    seen: dict[str, str] = {}
    all_presets: dict[str, Any] = {}
    built: dict[str, tuple[Any, Any]] = {}
    want = grid.size if limit is None else min(limit, grid.size)
    for spec, task in zip(grid.tasks, tasks, strict=True):
        if len(cells) >= want:
            break
        for i, name, overrides, sim, presets, label in entries():
            if len(cells) >= want:
                break
            try:
                sim.check_task(task)
            except NonvonError as e:
                raise _where_error(e, f"{where}, simulators[{i}] ({name}) on task {task.name!r}"
                                   ) from None
            for p in presets:
                all_presets[p.name] = p
            for seed in grid.seeds[:want - len(cells)]:
                cell = Cell.of(task, sim, seed, presets, spec=spec, overrides=overrides,
                               config_label=label, quick=grid.quick, data_dir=data_dir)
                if cell.key in seen:
                    raise ConfigError(f"{where}: cell {cell.label} is listed twice (same task, "
                                      f"simulator config and seed as {seen[cell.key]})",
                                      "remove the duplicate task or simulator entry")
                seen[cell.key] = cell.label
                cells.append(cell)
                built[cell.key] = (task, sim)
    return Plan(cells, all_presets, dict(zip(grid.tasks, tasks, strict=True)), built,
                total=grid.size)


def _spec_labels(grid: Grid, reg) -> list[str]:
    """The config label of every config of ``grid``, in plan order (nothing is built)."""
    entries = []
    for spec in grid.simulators:
        quick_cfg = quick_overrides(reg.simulators.get(spec.name)) if grid.quick else {}
        entries += [(spec.name, {**quick_cfg, **cfg}) for cfg in spec.iter_configs()]
    return _config_labels(entries)
