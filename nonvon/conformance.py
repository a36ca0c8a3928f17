"""The conformance suite every simulator plugin meets, shipped with nonvon.

Each check is a plain function ``check_*(name, task, reg)`` that raises ``AssertionError``
(or the unexpected error) when the simulator registered as ``name`` breaks the contract, so
it runs with or without pytest. A plugin author runs the suite from their own repository,
without nonvon's source or pytest settings, with a two-line test module::

    # tests/test_nonvon_conformance.py
    from nonvon.conformance import install

    install(globals(), simulators=["my-device"])   # None: every registered simulator

or without pytest: ``python -m nonvon.conformance my-device`` (exit status 1 on a failure).
nonvon's own ``tests/test_conformance.py`` calls the same :func:`install`.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable, Iterable, MutableMapping, Sequence

import numpy as np

from nonvon.energy_models.catalog import CATALOG, COST_CLASSES, TIME_UNIT
from nonvon.errors import ConfigError, IncompatibleError, NonvonError
from nonvon.registry import Registry, registry
from nonvon.simulator import Simulator, check_precision
from nonvon.tasks import Task

__all__ = ["CHECKS", "build", "fit_task", "digits_task", "run_checks", "install"]


@functools.cache
def digits_task() -> Task:
    """A small real task, always offline: 600 / 200 of scikit-learn's 8x8 digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, te = idx[:600], idx[600:800]
    return Task("digits-test", x[tr], d.target[tr], x[te], d.target[te], 10, source="sklearn digits")


def build(name: str, reg: Registry | None = None, **overrides) -> Simulator:
    """The registered simulator ``name`` with its quick budget and ``overrides``."""
    reg = reg or registry()
    cls = reg.simulators[name]
    return reg.simulator(name, **{**getattr(cls, "quick", {}), **overrides})


def fit_task(sim: Simulator, task: Task) -> Task:
    """Shrink ``task`` to what the simulator declares it can hold."""
    cap = sim.capabilities
    if cap.max_classes is not None and task.n_classes > cap.max_classes:
        task = task.select_classes(*range(cap.max_classes))
    if "image" not in cap.input_kinds:
        task = task.pca(min(cap.max_features or 16, 16))
    elif cap.max_features is not None and task.n_features > cap.max_features:
        side = int(math.isqrt(cap.max_features))
        task = task.downsample(side) if side >= 2 else task.pca(cap.max_features)
    return task


def _raises(exc: type[Exception], match: str, fn: Callable[[], object]) -> None:
    try:
        fn()
    except exc as e:
        if not re.search(match, str(e)):
            raise AssertionError(f"{type(e).__name__} {str(e)!r} does not mention {match!r}") from e
        return
    raise AssertionError(f"expected {exc.__name__} matching {match!r}, nothing was raised")


def _fitted(name: str, task: Task, reg: Registry, seed: int = 0):
    sim = build(name, reg)
    task = fit_task(sim, task)
    return sim.fit(task, seed=seed), task


# -- the checks ---------------------------------------------------------------------------
def check_fit_evaluate_ledger(name: str, task: Task, reg: Registry) -> None:
    """Fits, evaluates above chance, counts whole numbers of declared catalog kinds."""
    sim, task = _fitted(name, task, reg)
    result = sim.evaluate(task)
    assert result.simulator == name and result.paradigm == sim.paradigm
    assert sim.paradigm in reg.paradigms, (
        f"{name}: paradigm {sim.paradigm!r} is not declared; known: {sorted(reg.paradigms)} "
        "(declare it in the nonvon.paradigms entry-point group)")
    assert result.n_evaluated == len(task.y_test)
    assert 1.0 / task.n_classes < result.accuracy <= 1.0, f"{name}: no better than chance"
    assert result.ledger.totals, f"{name}: an evaluation that counted nothing"
    for kind, total in result.ledger.totals.items():
        assert kind in CATALOG and kind in sim.op_kinds, f"{name} counted {kind!r}"
        assert total >= 0
        if CATALOG[kind].unit != TIME_UNIT:
            assert total == int(total), f"{kind} total {total} is not a whole number"
    check_neurobench_figures(name, result.metrics)


def check_neurobench_figures(name: str, metrics: dict[str, float]) -> None:
    """The NeuroBench figures a simulator reports (:mod:`nonvon.workload`) are in range:
    sparsities in [0, 1], a positive footprint, effective operations within the dense ones."""
    for key in ("activation_sparsity", "connection_sparsity"):
        if key in metrics:
            assert 0.0 <= metrics[key] <= 1.0, f"{name}: {key} = {metrics[key]}"
    if "footprint_bytes" in metrics:
        assert metrics["footprint_bytes"] > 0, f"{name}: footprint {metrics['footprint_bytes']}"
    if "dense_ops" in metrics:
        effective = metrics.get("effective_macs", 0.0) + metrics.get("effective_acs", 0.0)
        assert 0 <= effective <= metrics["dense_ops"], (
            f"{name}: {effective} effective operations, {metrics['dense_ops']} dense")


def check_prices_on_every_compatible_preset(name: str, task: Task, reg: Registry) -> None:
    """Every compatible preset prices the ledger; at the chip and system boundaries every class
    the device has is charged (memory, io and, where the preset has static power, static are
    > 0), unless the preset declares the class absent with its reason."""
    sim, task = _fitted(name, task, reg)
    result = sim.evaluate(task)
    assert result.precision == check_precision(sim.precision, name)
    presets = reg.presets_for(sim.paradigm, sim.op_kinds)
    assert presets, f"no preset can price {name}"
    assert any(p.boundary == "chip" for p in presets) or len(sim.chip_boundary_absent) > 40, (
        f"no chip-boundary preset prices {name}, and it does not say why")
    for preset in presets:
        rep = result.priced(preset).energy
        assert rep.energy_j > 0 and rep.low_j <= rep.energy_j <= rep.high_j
        assert all(v >= 0 for v in rep.breakdown_j.values())
        assert math.isclose(sum(rep.breakdown_j.values()), rep.energy_j, rel_tol=1e-9)
        by = rep.energy_by_class_j
        assert set(by) == set(COST_CLASSES) and rep.boundary == preset.boundary
        assert math.isclose(math.fsum(by.values()), rep.energy_j, rel_tol=1e-9)
        if preset.boundary == "core":
            continue
        needed = ["memory", "io"] + (["static"] if "static" in preset.priced_classes else [])
        for cls in needed:
            assert by[cls] > 0 or cls in preset.absent, (
                f"{name} on {preset.name} ({preset.boundary}): {cls} is 0 and not declared absent")


def check_trained_state_round_trips(name: str, task: Task, reg: Registry) -> None:
    """The stored state, loaded into a fresh simulator, gives the same accuracy and ledger."""
    sim, task = _fitted(name, task, reg)
    trained = sim.evaluate(task)
    again = build(name, reg).load_state_tensors(sim.state_tensors(), task, seed=0).evaluate(task)
    assert again.accuracy == trained.accuracy
    assert dict(again.ledger.totals) == dict(trained.ledger.totals)
    assert again.ledger.resident_bytes == trained.ledger.resident_bytes


def check_deterministic_under_seed(name: str, task: Task, reg: Registry) -> None:
    runs = [s.evaluate(t) for s, t in (_fitted(name, task, reg, seed=3) for _ in range(2))]
    assert runs[0].accuracy == runs[1].accuracy
    assert dict(runs[0].ledger.totals) == dict(runs[1].ledger.totals)


def check_rejects_nan_inputs(name: str, task: Task, reg: Registry) -> None:
    sim, task = _fitted(name, task, reg)
    x_bad = task.x_test.copy()
    x_bad.flat[5] = np.nan
    bad = Task.__new__(Task)  # bypass Task validation: the simulator must check on its own
    object.__setattr__(bad, "__dict__", {**task.__dict__, "x_test": x_bad})
    _raises(ConfigError, "NaN", lambda: sim.evaluate(bad))


def check_rejects_wrong_shape_and_class_count(name: str, task: Task, reg: Registry) -> None:
    sim, task = _fitted(name, task, reg)
    other = task.pca(5) if task.is_image else task.pca(task.n_features - 1)
    _raises(IncompatibleError, "fitted on", lambda: sim.evaluate(other))
    _raises(IncompatibleError, "classes", lambda: sim.evaluate(task.select_classes(0, 1)))


def check_evaluate_before_fit_is_an_error(name: str, task: Task, reg: Registry) -> None:
    sim = build(name, reg)
    _raises(NonvonError, "fit", lambda: sim.evaluate(fit_task(sim, task)))


def check_unknown_config_option_is_an_error(name: str, task: Task, reg: Registry) -> None:
    _raises(ConfigError, "no config option", lambda: build(name, reg, not_an_option=1))


CHECKS: tuple[Callable[[str, Task, Registry], None], ...] = (
    check_fit_evaluate_ledger, check_prices_on_every_compatible_preset,
    check_trained_state_round_trips, check_deterministic_under_seed, check_rejects_nan_inputs,
    check_rejects_wrong_shape_and_class_count, check_evaluate_before_fit_is_an_error,
    check_unknown_config_option_is_an_error)


def run_checks(name: str, task: Task | None = None, reg: Registry | None = None,
               checks: Iterable[Callable] = CHECKS) -> dict[str, str | None]:
    """Run ``checks`` on simulator ``name`` without pytest: ``{check: None | what failed}``."""
    reg = reg or registry()
    if name not in reg.simulators:
        raise reg._unknown("simulator", name, reg.simulators)
    out = {}
    for check in checks:
        try:
            check(name, task or digits_task(), reg)
            out[check.__name__] = None
        except Exception as e:  # noqa: BLE001 - every failure is reported, the rest still run
            out[check.__name__] = f"{type(e).__name__}: {e}"
    return out


def install(namespace: MutableMapping[str, object], simulators: Sequence[str] | None = None) -> None:
    """Define one pytest test per check in ``namespace`` (a test module's ``globals()``),
    parametrized over ``simulators`` (default: every registered one), ids the simulator names
    (so ``pytest -k my-device`` selects one)."""
    import pytest

    names = sorted(registry().simulators) if simulators is None else list(simulators)

    def make(check):
        @pytest.mark.parametrize("sim_name", names)
        def test(sim_name):
            check(sim_name, digits_task(), registry())

        test.__name__ = "test_" + check.__name__.removeprefix("check_")
        test.__doc__ = check.__doc__
        return test

    for check in CHECKS:
        t = make(check)
        namespace[t.__name__] = t


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nonvon.conformance [SIMULATOR ...]``: run the checks, print each result."""
    names = list(sys.argv[1:] if argv is None else argv) or sorted(registry().simulators)
    failed = 0
    for name in names:
        for check, error in run_checks(name).items():
            failed += error is not None
            print(f"{'FAIL' if error else 'ok  '} {name} {check}" + (f": {error}" if error else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
