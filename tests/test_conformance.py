"""Conformance: every registered simulator meets the contract.

Parametrized from the registry, so a new plugin is covered without editing this file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nonvon.energy_models.catalog import CATALOG, COST_CLASSES, TIME_UNIT
from nonvon.errors import ConfigError, IncompatibleError, NonvonError
from nonvon.registry import registry
from nonvon.simulator import Simulator, check_precision
from nonvon.tasks import Task

SIMULATORS = sorted(registry().simulators)


def build(name: str, **overrides) -> Simulator:
    cls = registry().simulators[name]
    return registry().simulator(name, **{**getattr(cls, "quick", {}), **overrides})


def fit_task(sim: Simulator, task: Task) -> Task:
    """Shrink the digits task to what the simulator declares it can hold."""
    cap = sim.capabilities
    if cap.max_classes is not None and task.n_classes > cap.max_classes:
        task = task.select_classes(*range(cap.max_classes))
    if "image" not in cap.input_kinds:
        task = task.pca(min(cap.max_features or 16, 16))
    elif cap.max_features is not None and task.n_features > cap.max_features:
        side = int(math.isqrt(cap.max_features))
        task = task.downsample(side) if side >= 2 else task.pca(cap.max_features)
    return task


@pytest.fixture(params=SIMULATORS)
def sim_name(request) -> str:
    return request.param


def test_registry_has_simulators():
    assert "gpu-mlp" in SIMULATORS and "gpu-cnn" in SIMULATORS


def test_fit_evaluate_ledger(sim_name, digits_task, reg):
    sim = build(sim_name)
    task = fit_task(sim, digits_task)
    result = sim.fit(task, seed=0).evaluate(task)
    assert result.simulator == sim_name and result.paradigm == sim.paradigm
    assert result.n_evaluated == len(task.y_test)
    assert 1.0 / task.n_classes < result.accuracy <= 1.0, "no better than chance"
    assert result.ledger.totals, "an evaluation that counted nothing"
    for kind, total in result.ledger.totals.items():
        assert kind in CATALOG and kind in sim.op_kinds
        assert total >= 0
        if CATALOG[kind].unit != TIME_UNIT:
            assert total == int(total), f"{kind} total {total} is not a whole number"


def test_prices_on_every_compatible_preset(sim_name, digits_task, reg):
    """Every compatible preset prices the ledger; at the chip and system boundaries every class
    the device has is charged (DESIGN.md 2b): memory, io and, where the preset has static
    power, static are > 0, unless the preset declares the class absent with its reason."""
    sim = build(sim_name)
    task = fit_task(sim, digits_task)
    result = sim.fit(task, seed=0).evaluate(task)
    assert result.precision == check_precision(sim.precision, sim_name)
    presets = reg.presets_for(sim.paradigm, sim.op_kinds)
    assert presets, f"no preset can price {sim_name}"
    assert any(p.boundary == "chip" for p in presets) or len(sim.chip_boundary_absent) > 40, (
        f"no chip-boundary preset prices {sim_name}, and it does not say why")
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
                f"{sim_name} on {preset.name} ({preset.boundary}): {cls} is 0 and not declared absent")


def test_trained_state_round_trips(sim_name, digits_task):
    """A cached cell is recounted from its stored state: loading it into a fresh simulator
    must give the very same accuracy and ledger as the simulator that trained."""
    sim = build(sim_name)
    task = fit_task(sim, digits_task)
    trained = sim.fit(task, seed=0).evaluate(task)
    fresh = build(sim_name).load_state_tensors(sim.state_tensors(), task, seed=0)
    again = fresh.evaluate(task)
    assert again.accuracy == trained.accuracy
    assert dict(again.ledger.totals) == dict(trained.ledger.totals)
    assert again.ledger.resident_bytes == trained.ledger.resident_bytes


def test_deterministic_under_seed(sim_name, digits_task):
    runs = []
    for _ in range(2):
        sim = build(sim_name)
        task = fit_task(sim, digits_task)
        runs.append(sim.fit(task, seed=3).evaluate(task))
    assert runs[0].accuracy == runs[1].accuracy
    assert dict(runs[0].ledger.totals) == dict(runs[1].ledger.totals)


def test_rejects_nan_inputs(sim_name, digits_task):
    sim = build(sim_name)
    task = fit_task(sim, digits_task)
    sim.fit(task, seed=0)
    x_bad = task.x_test.copy()
    x_bad.flat[5] = np.nan
    bad = Task.__new__(Task)  # bypass Task validation: the simulator must check on its own
    object.__setattr__(bad, "__dict__", {**task.__dict__, "x_test": x_bad})
    with pytest.raises(ConfigError, match="NaN"):
        sim.evaluate(bad)


def test_rejects_wrong_shape_and_class_count(sim_name, digits_task):
    sim = build(sim_name)
    task = fit_task(sim, digits_task)
    sim.fit(task, seed=0)
    other = task.pca(5) if task.is_image else task.pca(task.n_features - 1)
    with pytest.raises(IncompatibleError, match="fitted on"):
        sim.evaluate(other)
    with pytest.raises(IncompatibleError, match="classes"):
        sim.evaluate(task.select_classes(0, 1))


def test_evaluate_before_fit_is_an_error(sim_name, digits_task):
    sim = build(sim_name)
    with pytest.raises(NonvonError, match="fit"):
        sim.evaluate(fit_task(sim, digits_task))


def test_unknown_config_option_is_an_error(sim_name):
    with pytest.raises(ConfigError, match="no config option"):
        build(sim_name, not_an_option=1)
