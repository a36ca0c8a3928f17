"""The simulator contract every paradigm plugin meets.

A simulator says *on what device and how* a model runs: it holds a frozen,
validated config, declares what it can run, trains with :meth:`fit` and, in
:meth:`evaluate`, counts every operation it actually executes into an
:class:`~nonvon.energy_models.OpLedger`.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nonvon.config import fixed_options
from nonvon.context import RunContext
from nonvon.energy_models import OpLedger, get_op_kind
from nonvon.errors import ConfigError, DataError, IncompatibleError, NonvonError, invalid
from nonvon.result import (
    Measurement,
    Result,
    library_versions,
    machine_description,
    module_distributions,
)
from nonvon.tasks import Task

__all__ = ["Simulator", "Capabilities", "Prediction", "execution_option", "is_execution_option",
           "check_precision", "code_identity", "check_domain"]

_PRECISION = re.compile(r"(fp32|tf32|bf16|fp16|int([1-9]|[12][0-9]|3[0-2])|binary|ternary|analog)")


def check_precision(value: object, where: str) -> str:
    """``value`` if it names a precision (fp32, tf32, bf16, fp16, int1..int32, binary,
    ternary, analog), else a :class:`ConfigError` naming ``where``."""
    if not isinstance(value, str) or not _PRECISION.fullmatch(value):
        raise ConfigError(f"{where}: precision {value!r} is not one nonvon knows",
                          "use fp32, tf32, bf16, fp16, int<bits> (int1..int32), binary, "
                          "ternary or analog")
    return value


def execution_option(default):
    """A config field that chooses how a cell is computed, not what (e.g. replaying the
    training step as a CUDA graph): the same experiment either way, equal to rounding, so
    ``compare``'s cache key leaves it out, as it leaves out which machine ran the cell."""
    return dataclasses.field(default=default, metadata={"execution": True})


def is_execution_option(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("execution"))


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a simulator can run; the host refuses a mismatch before any work."""

    input_kinds: tuple[str, ...] = ("image", "vector")
    max_features: int | None = None
    min_classes: int = 2
    max_classes: int | None = None


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What a subclass's ``_predict`` returns: labels and the ledger of that run, and
    ``extras``: typed side results (frozen dataclasses registered with
    :func:`nonvon.result.register_extra`) that :meth:`Simulator.evaluate` passes to the
    :class:`Result`."""

    labels: np.ndarray
    ledger: OpLedger
    measurements: tuple[Measurement, ...] = ()
    metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)
    extras: tuple[Any, ...] = ()


class Simulator(abc.ABC):
    """Base class for all simulators.

    Subclasses set ``paradigm``, ``Config`` (a frozen dataclass validating itself in
    ``__post_init__``), ``op_kinds`` (every kind ``_predict`` may count with this
    config; a class attribute or a property), optionally
    ``quick`` (config overrides for ``compare --quick``) and implement ``_fit`` and
    ``_predict``.
    """

    paradigm: ClassVar[str]
    Config: ClassVar[type]
    op_kinds: ClassVar[frozenset[str]]
    quick: ClassVar[dict[str, Any]] = {}
    # Presets this simulator models (a chip's own price list); when non-empty, compare
    # prices it on these alone by default rather than on every preset that could.
    native_presets: ClassVar[tuple[str, ...]] = ()
    # Every paradigm is ranked at the chip boundary. A device family that no chip-boundary
    # preset can price honestly says why here (shown in the report); never left silent.
    chip_boundary_absent: ClassVar[str] = ""
    # A variant's own config defaults (gpu-cnn: model="cnn", epochs=15, ...), and the options
    # its class fixes (its model): overriding one is refused, naming the simulator that has it.
    defaults: ClassVar[Mapping[str, Any]] = {}
    fixed: ClassVar[tuple[str, ...]] = ()
    # Relative cost of one cell of the default config on full MNIST (about its seconds in the
    # whole comparison on one H100, 8 workers sharing it: docs/results/mnist-comparison);
    # runners start the costliest cells first, so that none starts last.
    cost_hint: ClassVar[float] = 1.0
    # Whether fit trains through the run's training memo (nonvon.training_memo.shared_training
    # with ``context.training_memo``): then a fit in another process leaves the weights for
    # this one, and a cell that measures hardware trains in a runner's worker pool and only
    # measures alone.
    memoizes_training: ClassVar[bool] = False
    # The run this simulator's cell is part of (set by fit); the default is no run at all.
    context: RunContext = RunContext()

    def __init__(self, config: Any = None, /, **overrides: Any):
        base = config if config is not None else self.Config(**self.defaults)
        fields = {f.name for f in dataclasses.fields(base)}
        bad = sorted(set(overrides) - fields)
        if bad:
            raise ConfigError(f"{type(self).__name__} has no config option(s) {bad}",
                              f"valid options: {', '.join(sorted(fields))}")
        fixed_options(type(self), {o: overrides.get(o, getattr(base, o)) for o in self.fixed},
                      _registered_simulators)
        _check_overrides(type(self), base, overrides)
        try:
            self.config = dataclasses.replace(base, **overrides)
        except TypeError as e:
            raise ConfigError(f"invalid config for {type(self).__name__}: {e}") from None
        _check_finite_config(type(self), self.config)
        self.name = type(self).__name__
        self._fitted_on: tuple[tuple[int, ...], int] | None = None
        self.fit_wall_s = 0.0
        for kind in self.op_kinds:
            get_op_kind(kind)  # fail at construction, not after hours of training

    # -- declared capabilities ---------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @property
    def n_params(self) -> int:
        return 0

    @property
    def precision(self) -> str:
        """The stored precision of weights and arithmetic in this configuration (``fp32``,
        ``bf16``, ``int8``, ``binary``, ``analog``, ...): rows are compared at matched
        precision, so every simulator states it. Defaults to ``config.precision`` or
        ``config.dtype``."""
        for name in ("precision", "dtype"):
            if hasattr(self.config, name):
                return getattr(self.config, name)
        raise NotImplementedError(f"{type(self).__name__} does not declare its precision: "
                                  "override the `precision` property")

    @property
    def measures_hardware(self) -> bool:
        """Whether evaluating here reads a hardware energy counter (e.g. NVML on a GPU).

        Such a cell must run alone on its device: anything beside it would be counted too.
        """
        return False

    def check_task(self, task: Task) -> None:
        """Raise :class:`IncompatibleError` if this simulator cannot run ``task``, and
        :class:`DataError` if the task's data lies outside the documented input domain
        (:func:`check_domain`, the same check for every simulator)."""
        check_domain(task)
        cap = self.capabilities
        kind = "image" if task.is_image else "vector"
        if kind not in cap.input_kinds:
            raise IncompatibleError(f"{self.name} takes {cap.input_kinds} inputs; task "
                                    f"{task.name!r} has {kind} inputs {task.input_shape}",
                                    "transform the task (downsample / pca) or pick another simulator")
        if cap.max_features is not None and task.n_features > cap.max_features:
            raise IncompatibleError(f"{self.name} holds at most {cap.max_features} input features; "
                                    f"task {task.name!r} has {task.n_features}",
                                    "reduce inputs with task.downsample(side) or task.pca(k)")
        if task.n_classes < cap.min_classes or (cap.max_classes and task.n_classes > cap.max_classes):
            raise IncompatibleError(f"{self.name} handles {cap.min_classes}..{cap.max_classes} "
                                    f"classes; task {task.name!r} has {task.n_classes}",
                                    "use task.select_classes(...)")

    # -- the contract ------------------------------------------------------------------
    def fit(self, task: Task, *, seed: int = 0, progress: bool = False,
            context: RunContext | None = None) -> Simulator:
        """Train on ``task``'s train split; deterministic for a given ``seed``.

        ``context`` (kept as ``self.context`` for ``_fit`` and ``_predict``) describes the run
        the cell is part of; ``None`` is no run (each cell on its own)."""
        self.context = context if context is not None else RunContext()
        self.check_task(task)
        _check_finite(task.x_train, task.name, "train")
        start = time.perf_counter()
        self._fit(task, seed=seed, progress=progress)
        self.fit_wall_s = time.perf_counter() - start
        self._fitted_on = (task.input_shape, task.n_classes)
        self._seed = seed
        return self

    def evaluate(self, task: Task, *, split: str = "test", limit: int | None = None,
                 context: RunContext | None = None) -> Result:
        """Run inference on ``split`` (the first ``limit`` samples) and count what ran
        (``context``: as :meth:`fit`; ``None`` keeps the fit's)."""
        if context is not None:
            self.context = context
        if self._fitted_on is None:
            raise NonvonError(f"{self.name} has not been fitted", "call fit(task) first")
        if (task.input_shape, task.n_classes) != self._fitted_on:
            raise IncompatibleError(
                f"{self.name} was fitted on inputs {self._fitted_on[0]} with "
                f"{self._fitted_on[1]} classes; task {task.name!r} has {task.input_shape} "
                f"with {task.n_classes}", "evaluate on the task (and transforms) it was fitted on")
        x, y = task.split(split)
        if limit is not None:
            if not isinstance(limit, int) or limit < 1:
                raise ConfigError(f"limit={limit!r} must be a positive integer",
                                  "pass limit=None for the whole split")
            x, y = x[:limit], y[:limit]
        _check_finite(x, task.name, split)
        check_domain(task)
        start = time.perf_counter()
        pred = self._predict(x)
        wall = time.perf_counter() - start
        if pred.labels.shape != y.shape:
            raise RuntimeError(f"{self.name}._predict returned {pred.labels.shape} labels for "
                               f"{y.shape} samples")
        extra = set(pred.ledger.totals) - set(self.op_kinds)
        if extra:
            raise RuntimeError(f"{self.name} counted undeclared op kinds {sorted(extra)}; "
                               "add them to op_kinds")
        precision = check_precision(self.precision, f"{self.name}.precision")
        return Result(task=task.name, simulator=self.name, paradigm=self.paradigm,
                      precision=precision, seed=self._seed, accuracy=float(np.mean(pred.labels == y)),
                      n_evaluated=len(y), ledger=pred.ledger, sim_wall_s=wall,
                      fit_wall_s=self.fit_wall_s, n_params=self.n_params,
                      config=dataclasses.asdict(self.config), data_source=task.source,
                      measurements=pred.measurements, metrics=dict(pred.metrics),
                      extras=tuple(pred.extras),
                      versions={**library_versions(),
                                **code_identity(type(self))["distributions"]},
                      machine=machine_description(self.context.concurrent_cells))

    # -- trained state, for re-counting without retraining --------------------------------
    def state_tensors(self) -> dict[str, Any]:
        """The trained state as named tensors or arrays (no Python objects), written beside a
        cached cell as ``.safetensors`` so a counting change re-evaluates it instead of
        retraining. Override together with :meth:`_load_state_tensors`."""
        raise NotImplementedError(f"{type(self).__name__} cannot save its trained state")

    def load_state_tensors(self, tensors: Mapping[str, Any], task: Task, *, seed: int = 0,
                           fit_wall_s: float = 0.0) -> Simulator:
        """Restore what :meth:`state_tensors` returned for a fit on ``task`` with ``seed``;
        afterwards :meth:`evaluate` counts exactly as after that fit."""
        self.check_task(task)
        self._load_state_tensors(dict(tensors), task)
        self._fitted_on = (task.input_shape, task.n_classes)
        self._seed = seed
        self.fit_wall_s = fit_wall_s
        return self

    def _load_state_tensors(self, tensors: dict[str, Any], task: Task) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot load a trained state")

    @abc.abstractmethod
    def _fit(self, task: Task, *, seed: int, progress: bool) -> None: ...

    @abc.abstractmethod
    def _predict(self, x: np.ndarray) -> Prediction: ...


@functools.cache
def code_identity(cls: type) -> dict[str, Any]:
    """What a simulator class's results depend on beyond its config and data: the versions of
    the distributions that ship its classes (``distributions``) and a SHA-256 over the source
    files that define them (``source``), every class of its MRO but :class:`Simulator` and
    the standard library's. Module names and file bytes are hashed, not paths, so the same
    code gives the same value on every machine. A class without a readable source file
    (defined in ``python -c`` or a notebook) is hashed by its qualified name alone.
    Read once per class and process (an edit applies to the next process).
    """
    dists: dict[str, str] = {}
    sources: dict[str, bytes] = {}
    for c in cls.__mro__:
        module = c.__module__
        if c is Simulator or module.partition(".")[0] in sys.stdlib_module_names:
            continue
        dists.update(module_distributions(module))
        if module in sources:
            continue
        path = getattr(sys.modules.get(module), "__file__", None)
        try:
            sources[module] = Path(path).read_bytes() if path else b""
        except OSError:
            sources[module] = b""
        if not sources[module]:
            sources[module] = f"<no source: {c.__qualname__}>".encode()
    h = hashlib.sha256()
    for module in sorted(sources):
        h.update(module.encode() + b"\0" + hashlib.sha256(sources[module]).digest())
    return {"distributions": dict(sorted(dists.items())), "source": h.hexdigest()}


def _registered_simulators() -> Mapping[str, Any]:
    from nonvon.registry import registry  # only to name the simulator a refused option wants

    return registry().simulators


def check_domain(task: Task) -> None:
    """The input domain every simulator takes, checked by the base class so that all agree:
    at least two classes, integer labels in ``[0, n_classes)``, and images (3-D inputs)
    with every value in [0, 1]. Feature vectors (after ``pca``) may take any finite value.

    Raises:
        DataError: naming the task, the split, the values found and the fix.
    """
    where = f"task {task.name!r}"
    if isinstance(task.n_classes, bool) or not isinstance(task.n_classes, (int, np.integer)) \
            or task.n_classes < 2:
        raise invalid(f"{where}, n_classes", f"{task.n_classes!r} classes",
                      "an integer >= 2 (a classifier needs two classes)",
                      "give the number of distinct labels", DataError)
    for split in ("train", "test"):
        x, y = task.split(split)
        if not np.issubdtype(y.dtype, np.integer):
            raise invalid(f"{where}, y_{split}", f"labels of dtype {y.dtype}",
                          "integer labels", "convert with y.astype(np.int64) after checking "
                          "they are whole numbers", DataError)
        if len(y) and (y.min() < 0 or y.max() >= task.n_classes):
            raise invalid(f"{where}, y_{split}", f"labels in [{y.min()}, {y.max()}]",
                          f"integers in [0, {task.n_classes})",
                          "remap labels to 0..n_classes-1 (select_classes does this)", DataError)
    if task.is_image:
        lo, hi = task.x_range
        if lo < 0 or hi > 1:
            raise invalid(f"{where}, x_train and x_test", f"image values in [{lo:g}, {hi:g}]",
                          "image values in [0, 1]",
                          f"scale the images into [0, 1] (e.g. x / {hi:g} for values in "
                          f"[0, {hi:g}]), or flatten them to feature vectors, which may take "
                          "any finite value", DataError)


def _display_name(cls: type) -> str:
    """The name ``cls`` is registered under (its class name when it is not registered)."""
    try:
        found = [n for n, c in _registered_simulators().items() if c is cls]
    except Exception:  # noqa: BLE001 - only a nicer name is at stake
        found = []
    return found[0] if len(found) == 1 else cls.__name__


def _check_overrides(cls: type, base: Any, overrides: Mapping[str, Any]) -> None:
    """Refuse an override that would change what the simulator is without a word: an empty
    tuple for an option whose default is a non-empty tuple of integers (layer widths,
    channels, batch sizes; ``hidden=()`` would turn an MLP into a linear model still under
    the MLP's name)."""
    for name, value in overrides.items():
        default = getattr(base, name)
        if (isinstance(value, (tuple, list)) and not value and isinstance(default, tuple)
                and default and all(isinstance(v, int) and not isinstance(v, bool)
                                    for v in default)):
            raise invalid(f"{_display_name(cls)} option {name}", f"{name}={value!r} is empty",
                          f"a non-empty tuple of integers like the default {default!r}",
                          f"give at least one entry, e.g. {name}={default!r}; for another "
                          "model choose the simulator that has it (`nonvon list`)")


def _non_finite(value: Any) -> bool:
    if isinstance(value, (float, np.floating)):
        return not np.isfinite(value)
    if isinstance(value, (tuple, list)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, Mapping):
        return any(_non_finite(v) for v in value.values())
    return False


def _check_finite_config(cls: type, config: Any) -> None:
    """Every number in a config is finite, whichever simulator it is and whatever its own
    checks cover: NaN and infinity are refused here, never passed to training."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if _non_finite(value):
            default = ("" if f.default is dataclasses.MISSING
                       else f" (its default is {f.default!r})")
            raise invalid(f"{_display_name(cls)} option {f.name}", f"{f.name}={value!r} holds NaN or "
                          "infinity", "finite numbers", f"set {f.name} to a finite value{default}")


def _check_finite(x: np.ndarray, task: str, split: str) -> None:
    if not np.isfinite(x).all():
        raise ConfigError(f"task {task!r}: the {split} inputs contain NaN or inf",
                          "clean the data before fitting or evaluating")
