"""pytest helpers: sweep simulators and settings in a few lines, results cached between runs.

:func:`sweep` turns a grid (the same keys as a ``nonvon sweep`` TOML file) into a
``pytest.mark.parametrize`` over its cells, one test case per (task, simulator
config, seed, preset)::

    from nonvon.testing import sweep

    @sweep(tasks="digits", presets=["cmos-45nm", "cmos-7nm"], seeds=[0, 1],
           simulators={"name": "gpu-mlp", "set": {"device": "cpu"}, "grid": {"epochs": [2, 5]}})
    def test_mlp_meets_its_budget(cell):
        assert cell.accuracy >= 0.85
        assert cell.energy_j <= 300e-9      # joules per inference on cell.preset

The grid is checked when the test module is collected (a typo fails at once, before
any training). A cell is fitted and evaluated the first time a test reads it, once for
all its presets, and its :class:`~nonvon.result.Result` is cached as JSON under
``.pytest_cache/d/nonvon-sweep/<key>.json`` in the folder pytest runs from
(``NONVON_TEST_CACHE`` or ``sweep(..., cache_dir=...)`` overrides it; ``pytest
--cache-clear`` empties it). Keys and files are those of ``nonvon compare`` and
``nonvon sweep``, so a results folder's ``cache/`` can serve as the cache too.

Fixtures, for tests that want a registry or a cell on demand: ``nonvon_registry`` and
``nonvon_cells`` (a :class:`CellCache`). Make them available by importing them into a
``conftest.py``: ``from nonvon.testing import nonvon_cells, nonvon_registry``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from nonvon.cells import Cell, TaskSpec, cell_key, cell_rows, load_cell, tuples
from nonvon.errors import DataError
from nonvon.executors import execute
from nonvon.grids import Grid, plan_sweep
from nonvon.result import Result

__all__ = ["CellCache", "SweepCase", "sweep", "nonvon_registry", "nonvon_cells",
           "default_cache_dir"]

CACHE_ENV = "NONVON_TEST_CACHE"


def default_cache_dir() -> Path:
    """``$NONVON_TEST_CACHE``, else ``.pytest_cache/d/nonvon-sweep`` under the current folder."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.cwd() / ".pytest_cache" / "d" / "nonvon-sweep"


class CellCache:
    """Computes cells in this process and keeps each as ``<folder>/<key>.json`` (with its
    parameters beside it), through the same runner as ``nonvon compare`` and ``nonvon sweep``.

    Args:
        folder: where results are kept between runs (created on first write).
        reg: registry to build tasks and simulators from (default: the process-wide one).
        threads: torch threads while a cell computes (1, as ``nonvon sweep``, so a cached
            result is the one a sweep would have produced).

    Attributes:
        computed, loaded: cells fitted here, and cells read from the folder.
    """

    def __init__(self, folder: str | os.PathLike, reg=None, threads: int | None = 1):
        from nonvon.registry import registry

        self.folder = Path(folder)
        self.reg = reg or registry()
        self.threads = threads
        self.computed = 0
        self.loaded = 0
        self._results: dict[str, Result] = {}
        self._tasks: dict[tuple, Any] = {}

    def _task(self, spec: TaskSpec, quick: bool, data_dir):
        key = (spec, quick, data_dir)
        if key not in self._tasks:
            self._tasks[key] = spec.build(self.reg, quick=quick, data_dir=data_dir)
        return self._tasks[key]

    def result(self, cell: Cell) -> Result:
        """The (unpriced) result of ``cell``: from memory, from the folder, or computed now."""
        if cell.key in self._results:
            return self._results[cell.key]
        task = self._task(cell.task, cell.quick, cell.data_dir)
        sim = self.reg.simulator(cell.simulator, **{k: tuples(v) for k, v in cell.overrides.items()})
        if cell_key(task, sim, cell.seed) != cell.key:
            raise DataError(f"the data or config of {cell.label} changed since it was planned",
                            "rerun pytest (the grid is planned again at collection)")
        path = self.folder / f"{cell.key}.json"
        if path.exists():
            result = load_cell(path).result
            self.loaded += 1
        else:
            ran = execute([cell], cache=self.folder, executor="inline", threads=self.threads,
                          built={cell.key: (task, sim)}, catch=False, log=None)
            result = ran.results[cell.key]
            self.computed += 1
        self._results[cell.key] = result
        return result

    def run(self, task: str | Mapping, simulator: str, *, seed: int = 0, preset: str | None = None,
            **overrides: Any) -> Result:
        """One cell on demand: ``nonvon_cells.run("digits", "gpu-mlp", epochs=2, preset="cmos-7nm")``.

        ``task`` is a name or a task table (``{"name": "digits", "downsample": 4}``);
        with ``preset`` the result comes back priced on it.
        """
        grid = Grid.from_dict({"tasks": [task], "seeds": [seed],
                               "simulators": [{"name": simulator, "set": overrides}],
                               **({"presets": [preset]} if preset else {})})
        cell = plan_sweep(grid, self.reg).cells[0]
        result = self.result(cell)
        return result.priced(self.reg.preset(preset)) if preset else result


class SweepCase:
    """One test case of :func:`sweep`: a cell priced on one preset, computed on first use.

    Attributes:
        task, simulator, config, seed, preset: what the case is (``config``: the
            simulator's config overrides).
    """

    def __init__(self, cell: Cell, preset, cells: Callable[[], CellCache]):
        self.cell = cell
        self.task = cell.task_name
        self.simulator = cell.simulator
        self.config = dict(cell.overrides)
        self.seed = cell.seed
        self.preset = preset.name
        self._preset = preset
        self._cells = cells
        self._priced: Result | None = None

    @property
    def result(self) -> Result:
        """The cell's :class:`Result`, priced on :attr:`preset`."""
        if self._priced is None:
            self._priced = self._cells().result(self.cell).priced(self._preset)
        return self._priced

    @property
    def accuracy(self) -> float:
        return self.result.accuracy

    @property
    def energy_j(self) -> float:
        """Modelled energy per inference on :attr:`preset` (J)."""
        return self.result.energy.energy_j

    @property
    def energy_low_j(self) -> float:
        return self.result.energy.low_j

    @property
    def energy_high_j(self) -> float:
        return self.result.energy.high_j

    @property
    def latency_s(self) -> float | None:
        """Modelled device latency per inference (s), ``None`` when the preset has no timing."""
        return self.result.energy.latency_s

    @property
    def breakdown_j(self) -> dict[str, float]:
        return dict(self.result.energy.breakdown_j)

    @property
    def row(self) -> dict[str, Any]:
        """The ``results.json`` row of this case, as ``nonvon sweep`` writes it."""
        return cell_rows(self._cells().result(self.cell), [self._preset], self.cell)[0]

    def __repr__(self) -> str:
        return f"SweepCase({self.cell.label} @ {self.preset})"


def _case_id(cell: Cell, preset: str) -> str:
    cfg = f"-{cell.config_label}" if cell.config_label else ""
    return f"{cell.task_name.replace('|', '.')}-{cell.simulator}{cfg}-s{cell.seed}-{preset}"


def sweep(tasks: str | Mapping | Sequence, simulators: str | Mapping | Sequence, *,
          presets: str | Sequence[str] | None = None, seeds: int | Sequence[int] = (0,),
          quick: bool = False, argname: str = "cell", cache_dir: str | os.PathLike | None = None,
          reg=None) -> pytest.MarkDecorator:
    """Parametrize a test over every (task, simulator config, seed, preset) of a grid.

    Args:
        tasks, simulators, presets, seeds, quick: as the keys of a ``nonvon sweep`` grid
            (docs/sweeps.md): names or tables; a simulator table has ``name``, ``set``
            (fixed options) and ``grid`` (lists of values to sweep). ``presets=None``
            prices each cell on every registered preset that fits its simulator.
        argname: the test's parameter that receives a :class:`SweepCase`.
        cache_dir: where results are kept between runs (default :func:`default_cache_dir`).
        reg: registry (default: the process-wide one).

    Returns:
        A ``pytest.mark.parametrize`` marker; apply it as a decorator.

    Raises:
        NonvonError: a bad grid, name or config, when the test module is collected.
    """
    def listed(v):
        return list(v) if isinstance(v, tuple | list) else [v]

    data: dict[str, Any] = {"tasks": listed(tasks), "simulators": listed(simulators),
                            "seeds": [seeds] if isinstance(seeds, int) else list(seeds),
                            "quick": quick}
    if presets is not None:
        data["presets"] = [presets] if isinstance(presets, str) else list(presets)
    grid = Grid.from_dict(data, source="passed to nonvon.testing.sweep")
    plan = plan_sweep(grid, reg)
    made: list[CellCache] = []

    def cells() -> CellCache:
        """One cache for every case of this marker, made when the first case runs."""
        if not made:
            made.append(CellCache(cache_dir if cache_dir is not None else default_cache_dir(), reg))
        return made[0]

    cases, ids = [], []
    for cell in plan.cells:
        for name in cell.presets:
            cases.append(SweepCase(cell, plan.presets[name], cells))
            ids.append(_case_id(cell, name))
    return pytest.mark.parametrize(argname, cases, ids=ids)


# -- fixtures (import them into a conftest.py) -------------------------------------------
@pytest.fixture(scope="session")
def nonvon_registry():
    """The process-wide registry of tasks, simulators and presets."""
    from nonvon.registry import registry

    return registry()


@pytest.fixture(scope="session")
def nonvon_cells(request) -> CellCache:
    """A :class:`CellCache` in pytest's cache folder (``NONVON_TEST_CACHE`` overrides it)."""
    if os.environ.get(CACHE_ENV) or getattr(request.config, "cache", None) is None:
        folder = default_cache_dir()  # also when the cacheprovider plugin is off
    else:
        folder = request.config.cache.mkdir("nonvon-sweep")
    return CellCache(folder)
