"""Results: one simulator evaluated on one task, optionally priced on one preset."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import numbers
from pathlib import Path
from typing import Any

from nonvon._io import atomic_write_json
from nonvon.energy_models import EnergyReport, OpLedger, Preset, price
from nonvon.energy_models.catalog import COST_CLASSES
from nonvon.errors import ConfigError, DataError, invalid

__all__ = ["Result", "Measurement", "ROW_FIELDS", "library_versions", "machine_description",
           "register_extra", "RawExtra", "priced_fields", "flat_row", "rows_frame",
           "csv_columns", "CSV_CONFIG_COLUMNS", "extras_to_dict", "extras_from_dict", "find_extra"]

# The documented, stable columns of results.json / results.csv (docs/schema.md).
ROW_FIELDS = (
    "task", "simulator", "paradigm", "preset", "boundary", "precision", "kind", "accuracy",
    "energy_per_inference_j", "energy_low_j", "energy_high_j", "energy_by_class_j",
    "energy_breakdown_j", "latency_per_inference_s",
    "sim_wall_s", "fit_wall_s", "n_params", "seed", "n_evaluated", "data_source", "machine",
)


@dataclasses.dataclass(frozen=True)
class Measurement:
    """An energy figure measured on real hardware (not modelled), e.g. NVML on a GPU."""

    label: str
    energy_per_inference_j: float
    latency_per_inference_s: float
    batch_size: int
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


# -- typed extras ---------------------------------------------------------------------------
# A simulator's side results (a curve, a statistic of the run) travel as small frozen
# dataclasses on Prediction.extras and Result.extras, each registered under a stable name so
# that results.json and the cell cache can carry it and read it back.
_EXTRA_TYPES: dict[str, type] = {}


def register_extra(name: str):
    """Class decorator: register a frozen dataclass as the extra stored under ``name``.

    Its fields must be JSON values (numbers, strings, booleans, None) or tuples of them; lists
    read back from JSON become tuples again. A plugin registers its extras in the module that
    defines them, e.g.::

        @register_extra("photon_curve")
        @dataclasses.dataclass(frozen=True)
        class PhotonCurve: ...
    """
    def deco(cls: type) -> type:
        params = getattr(cls, "__dataclass_params__", None)
        if params is None or not params.frozen:
            raise TypeError(f"extra {name!r}: {cls.__name__} must be a frozen dataclass")
        old = _EXTRA_TYPES.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"extra name {name!r} is taken by {old.__module__}.{old.__qualname__}")
        cls.extra_name = name
        _EXTRA_TYPES[name] = cls
        return cls
    return deco


@dataclasses.dataclass(frozen=True)
class RawExtra:
    """An extra read from a file whose type is not registered in this process (its plugin is
    not imported): kept as data, written back unchanged, decoded by :func:`find_extra`."""

    name: str
    data: dict[str, Any]


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _decode_extra(cls: type, data: dict[str, Any]):
    return cls(**{k: _tuples(v) for k, v in data.items()})


def _extra_name(extra) -> str:
    if isinstance(extra, RawExtra):
        return extra.name
    name = getattr(type(extra), "extra_name", None)
    if name is None or _EXTRA_TYPES.get(name) is not type(extra):
        raise TypeError(f"{type(extra).__name__} is not a registered extra: decorate it with "
                        "@nonvon.result.register_extra(name)")
    return name


def extras_to_dict(extras) -> dict[str, dict[str, Any]]:
    """``{name: fields}`` of each extra (the JSON form in results and rows)."""
    out = {}
    for e in extras:
        name = _extra_name(e)
        if name in out:
            raise ValueError(f"two extras named {name!r} in one result: keep one of each type")
        out[name] = dict(e.data) if isinstance(e, RawExtra) else dataclasses.asdict(e)
    return out


def extras_from_dict(d: dict[str, dict[str, Any]] | None) -> tuple[Any, ...]:
    """The inverse of :func:`extras_to_dict`; unregistered names stay :class:`RawExtra`."""
    if not d:
        return ()
    return tuple(_decode_extra(_EXTRA_TYPES[k], v) if k in _EXTRA_TYPES else RawExtra(k, dict(v))
                 for k, v in d.items())


def find_extra(extras, cls: type):
    """The extra of type ``cls`` in ``extras`` (decoding a :class:`RawExtra` of its name), or None."""
    for e in extras:
        if type(e) is cls:
            return e
        if isinstance(e, RawExtra) and e.name == getattr(cls, "extra_name", None):
            return _decode_extra(cls, e.data)
    return None


def library_versions() -> dict[str, str]:
    """Versions of nonvon and the libraries every result depends on (numpy, torch)."""
    return dict(_library_versions())


@functools.cache  # read once per process: cell_key asks for every cell a sweep plans
def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("nonvon", "numpy", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


@functools.cache
def _plugin_modules() -> dict[str, dict[str, str]]:
    """Top-level module -> ``{distribution: version}`` of what the entry points of nonvon's
    groups name: an entry point knows the distribution that declares it, also for a plugin
    whose metadata lists no files."""
    from importlib.metadata import distributions

    out: dict[str, dict[str, str]] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group.startswith("nonvon."):
                out.setdefault(ep.module.partition(".")[0], {})[dist.name] = dist.version
    return out


@functools.cache
def module_distributions(module: str) -> dict[str, str]:
    """``{distribution: version}`` of the installed distributions that ship ``module`` (a
    dotted name): those whose nonvon entry points name its top-level package, else those
    whose files hold it; empty for a module no distribution ships (a script, a test)."""
    from importlib.metadata import packages_distributions, version

    top = module.partition(".")[0]
    found = _plugin_modules().get(top)
    if found:
        return dict(found)
    out = {}
    for name in packages_distributions().get(top, ()):
        with contextlib.suppress(Exception):
            out[name] = version(name)
    return out


@functools.cache
def _hardware() -> str:
    """CPU, core count and CUDA GPU, looked up once per process."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    text = f"{cpu} CPU, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name()}"
    except ImportError:  # torch is a dependency, but a record must not fail for it
        pass
    return text


def machine_description(concurrent_cells: int = 1) -> str:
    """Where a result was computed, so its wall times can be read: CPU, core count, GPU if
    any, and how many cells shared the machine (``concurrent_cells``, from the run context)
    when a runner computed several at once."""
    return _hardware() + (f", up to {concurrent_cells} cells at once"
                          if concurrent_cells > 1 else "")


def _real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_result(r: Result) -> None:
    """Every value of a result within what it can be, so that an impossible record (a hand
    edit, a broken plugin) is refused where it enters rather than written into results.json
    and the report."""
    where = f"result of {r.simulator!r} on {r.task!r}"
    checks = (
        ("accuracy", _real(r.accuracy) and 0 <= r.accuracy <= 1, "a finite number in [0, 1]"),
        ("n_evaluated", _whole(r.n_evaluated) and r.n_evaluated >= 1, "an integer >= 1"),
        ("seed", _whole(r.seed) and r.seed >= 0, "an integer >= 0"),
        ("n_params", _whole(r.n_params) and r.n_params >= 0, "an integer >= 0"),
        ("sim_wall_s", _real(r.sim_wall_s) and r.sim_wall_s >= 0, "a finite number >= 0"),
        ("fit_wall_s", _real(r.fit_wall_s) and r.fit_wall_s >= 0, "a finite number >= 0"),
        ("metrics", isinstance(r.metrics, dict) and all(
            isinstance(k, str) and (_real(v) or isinstance(v, bool)) for k, v in r.metrics.items()),
         "names -> finite numbers"),
        ("versions", isinstance(r.versions, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in r.versions.items()),
         "distribution names -> version strings"),
        ("measurements", all(
            isinstance(m, Measurement) and _real(m.energy_per_inference_j)
            and m.energy_per_inference_j >= 0 and _real(m.latency_per_inference_s)
            and m.latency_per_inference_s >= 0 and _whole(m.batch_size) and m.batch_size >= 1
            for m in r.measurements),
         "energies and latencies finite and >= 0, batch sizes >= 1"),
    )
    for field, ok, allowed in checks:
        if not ok:
            value = getattr(r, field)
            raise invalid(f"{where}, field {field!r}", f"{field} = {value!r} is impossible",
                          allowed, "recompute it: a stored record was edited or damaged, or a "
                          "simulator produced it (then fix the simulator)", DataError)


#: results.csv's columns after ``simulator``: which config of a sweep the row is (its label,
#: and the overrides that made it as JSON), so that configs of one simulator stay apart.
CSV_CONFIG_COLUMNS = ("config_label", "config")


def csv_columns() -> list[str]:
    """results.csv's header: ``ROW_FIELDS`` with ``energy_by_class_j`` spread over one column
    per cost class (``energy_compute_j``, ``energy_memory_j``, ...), in the same place, and
    :data:`CSV_CONFIG_COLUMNS` after ``simulator``."""
    cols = []
    for field in ROW_FIELDS:
        if field == "energy_by_class_j":
            cols += [f"energy_{c}_j" for c in COST_CLASSES]
        else:
            cols.append(field)
        if field == "simulator":
            cols += CSV_CONFIG_COLUMNS
    return cols


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with ``energy_by_class_j`` spread over one field per cost class
    (``energy_compute_j``, ...; ``None`` where the row has none): one value per column, as in
    results.csv and :meth:`Result.to_pandas`."""
    flat = {k: v for k, v in row.items() if k != "energy_by_class_j"}
    by_class = row.get("energy_by_class_j") or {}
    for c in COST_CLASSES:
        flat[f"energy_{c}_j"] = by_class.get(c)
    return flat


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError("to_pandas() needs pandas, which is not installed",
                          "pip install pandas (results.csv and results.json need nothing)") from None
    return pandas


def rows_frame(rows: list[dict[str, Any]]):
    """A pandas DataFrame of results rows: one row each, results.csv's columns first (energy
    by cost class one column per class), the other fields after them as they are."""
    pd = _pandas()
    flat = [flat_row(r) for r in rows]
    first = [c for c in csv_columns() if any(c in f for f in flat)]
    rest = list(dict.fromkeys(k for f in flat for k in f if k not in first))
    return pd.DataFrame(flat, columns=first + rest)


def priced_fields(e: EnergyReport, ledger: OpLedger) -> dict[str, Any]:
    """The fields of a modelled row that come from pricing ``ledger`` (``e``): the preset,
    its boundary, the energies, latency and the ledger itself (``nonvon energy`` re-prices a
    row with these alone)."""
    return {"preset": e.preset, "boundary": e.boundary, "kind": "modelled",
            "energy_per_inference_j": e.energy_j, "energy_low_j": e.low_j,
            "energy_high_j": e.high_j, "energy_by_class_j": dict(e.energy_by_class_j),
            "memory_placement": dict(e.placement), "energy_breakdown_j": dict(e.breakdown_j),
            "latency_per_inference_s": e.latency_s, "ledger": ledger.per_inference(),
            "ledger_totals": ledger.to_dict(), "assumptions": list(e.assumptions)}


@dataclasses.dataclass(frozen=True)
class Result:
    """What :meth:`Simulator.evaluate` returns; :meth:`priced` adds an energy report."""

    task: str
    simulator: str
    paradigm: str
    seed: int
    accuracy: float
    n_evaluated: int
    ledger: OpLedger
    sim_wall_s: float
    fit_wall_s: float
    n_params: int
    config: dict[str, Any]
    data_source: str = ""
    measurements: tuple[Measurement, ...] = ()
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # e.g. NeuroBench counts
    versions: dict[str, str] = dataclasses.field(default_factory=library_versions)
    machine: str = dataclasses.field(default_factory=machine_description)
    energy: EnergyReport | None = None
    precision: str = ""  # stored precision of weights and arithmetic, e.g. fp32, int8, binary
    extras: tuple[Any, ...] = ()  # typed side results (register_extra), e.g. a photon curve

    def __post_init__(self) -> None:
        _check_result(self)

    def extra(self, cls: type):
        """This result's extra of type ``cls`` (e.g. a plugin's curve), or ``None``."""
        return find_extra(self.extras, cls)

    @property
    def preset(self) -> str | None:
        return self.energy.preset if self.energy else None

    def priced(self, preset: Preset) -> Result:
        return dataclasses.replace(self, energy=price(self.ledger, preset))

    # -- rows for tables -------------------------------------------------------------
    def _base_row(self) -> dict[str, Any]:
        return {"task": self.task, "simulator": self.simulator, "paradigm": self.paradigm,
                "precision": self.precision, "accuracy": self.accuracy, "sim_wall_s": self.sim_wall_s,
                "fit_wall_s": self.fit_wall_s, "n_params": self.n_params, "seed": self.seed,
                "n_evaluated": self.n_evaluated, "data_source": self.data_source,
                "machine": self.machine, "metrics": dict(self.metrics),
                **({"extras": extras_to_dict(self.extras)} if self.extras else {})}

    def modelled_row(self) -> dict[str, Any]:
        """The row of this result as priced on its preset (see :meth:`priced`)."""
        if self.energy is None:
            raise ValueError("this result is not priced; call result.priced(preset) first")
        return {**self._base_row(), **priced_fields(self.energy, self.ledger)}

    def measured_rows(self) -> list[dict[str, Any]]:
        """One row per hardware measurement (e.g. NVML at batch 1 and 1024)."""
        # A wall-power measurement covers the whole board (system boundary) and cannot be split
        # by cost class: the five classes are null, never a guessed split.
        return [{**self._base_row(), "preset": m.label, "boundary": "system", "kind": "measured",
                 "energy_per_inference_j": m.energy_per_inference_j,
                 "energy_low_j": m.energy_per_inference_j, "energy_high_j": m.energy_per_inference_j,
                 "energy_by_class_j": dict.fromkeys(COST_CLASSES),
                 "energy_breakdown_j": {"measured": m.energy_per_inference_j},
                 "latency_per_inference_s": m.latency_per_inference_s, "batch_size": m.batch_size,
                 "details": m.details} for m in self.measurements]

    # -- notebooks -------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """This result's rows: modelled on its preset (when priced) and one per hardware
        measurement; unpriced and unmeasured, one row without energy (its ledger per
        inference in ``ledger``)."""
        out = ([self.modelled_row()] if self.energy is not None else []) + self.measured_rows()
        return out or [{**self._base_row(), "preset": "", "kind": "unpriced",
                        "ledger": self.ledger.per_inference()}]

    def _repr_html_(self) -> str:
        from nonvon.report import html_table, results_html

        rows = self.rows()
        if rows[0]["kind"] != "unpriced":
            return results_html(rows)
        ops = sorted(self.ledger.per_inference().items(), key=lambda kv: -kv[1])
        return html_table(["task", "simulator", "seed", "accuracy", "not priced: ops per inference"],
                          [[self.task, self.simulator, self.seed, f"{100 * self.accuracy:.2f}%",
                            ", ".join(f"{k} {v:.4g}" for k, v in ops)]])

    def to_pandas(self):
        """A pandas DataFrame of :meth:`rows` (results.csv's columns first).

        Raises:
            ConfigError: pandas is not installed.
        """
        return rows_frame(self.rows())

    # -- JSON round trip -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["ledger"] = self.ledger.to_dict()
        d["measurements"] = [dataclasses.asdict(m) for m in self.measurements]
        d["energy"] = self.energy.to_dict() if self.energy else None
        d["extras"] = extras_to_dict(self.extras)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        try:
            d = dict(d)
            d["ledger"] = OpLedger.from_dict(d["ledger"])
            d["measurements"] = tuple(Measurement(**m) for m in d.get("measurements", ()))
            d["extras"] = extras_from_dict(d.get("extras"))
            if d.get("energy"):
                e = dict(d["energy"])
                e["assumptions"] = tuple(e["assumptions"])
                d["energy"] = EnergyReport(**e)
            return cls(**d)
        except (KeyError, TypeError) as e:
            raise DataError(f"malformed result record: {e}",
                            "the file was not written by this version of nonvon; delete it "
                            "and rerun") from None

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Result:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path} is not valid JSON: {e}", "delete it and rerun") from None
