"""Shared trainings: snn-mlp and the chips train their common LIF network once in a compare,
and a chip deployed from the shared weights is the chip trained on its own."""

from __future__ import annotations

import os

import pytest
import torch

import nonvon.simulators.torch_backed as torch_backed
from nonvon.compare import compare
from nonvon.context import RunContext
from nonvon.registry import registry
from nonvon.report import headline_markdown
from nonvon.training_memo import shared_training

QUICK = {"hidden": (16,), "epochs": 2, "timesteps": 4, "batch_size": 64, "lr": 5e-3}


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2)


def test_without_a_folder_it_just_trains():
    calls = []
    assert shared_training(_net(), {"a": 1}, lambda: calls.append(1), None) is False
    assert calls == [1]


def test_the_second_training_of_a_recipe_loads_the_first(tmp_path):
    def train(net):
        def run():
            with torch.no_grad():
                net.weight.add_(1.0)
        return run

    first = _net()
    assert shared_training(first, {"recipe": 1}, train(first), tmp_path) is False
    second = _net()
    assert shared_training(second, {"recipe": 1}, lambda: pytest.fail("trained twice"),
                           tmp_path) is True
    assert torch.equal(second.weight, first.weight) and torch.equal(second.bias, first.bias)
    other = _net()
    assert shared_training(other, {"recipe": 2}, train(other), tmp_path) is False  # another recipe
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_a_run_sets_no_environment_variable(tmp_path):
    """The memo folder reaches the simulator in its run context, not through the environment."""
    def ours() -> dict[str, str]:  # torch sets variables of its own on first use
        return {k: v for k, v in os.environ.items() if k.startswith(("NONVON_", "XLA_"))}

    before = ours()
    compare(["digits"], ["snn-mlp"], overrides={"snn-mlp": QUICK}, out_dir=tmp_path,
            progress=False, log=lambda m: None, report=False)
    assert ours() == before
    assert len(list((tmp_path / "cache" / "training").glob("*.pt"))) == 1


@pytest.fixture
def float_trainings(monkeypatch):
    """Labels of the float (pre-deployment) trainings that actually ran."""
    labels = []
    real = torch_backed.train_classifier

    def spy(*args, label="", **kwargs):
        labels.append(label)
        return real(*args, label=label, **kwargs)

    monkeypatch.setattr(torch_backed, "train_classifier", spy)  # every torch simulator trains through it
    return labels


def test_a_chip_from_shared_weights_equals_the_chip_trained_alone(digits_task, tmp_path,
                                                                   float_trainings):
    reg = registry()
    alone = reg.simulator("loihi", **QUICK).fit(digits_task, seed=0).evaluate(digits_task)
    run = RunContext(training_memo=tmp_path)
    reg.simulator("snn-mlp", **QUICK).fit(digits_task, seed=0, context=run)
    shared = reg.simulator("loihi", **QUICK).fit(digits_task, seed=0, context=run).evaluate(digits_task)
    assert float_trainings == ["loihi train", "snn-mlp train"]  # the second loihi loaded it
    assert shared.accuracy == alone.accuracy
    assert shared.ledger.totals == alone.ledger.totals


def test_compare_trains_the_common_network_once(tmp_path, float_trainings):
    overrides = {name: QUICK for name in ("snn-mlp", "loihi", "spinnaker2")}
    out = compare(["digits"], list(overrides), overrides=overrides, out_dir=tmp_path,
                  progress=False, log=lambda m: None, report=False)
    assert out.computed == 3 and len(float_trainings) == 1
    assert len(list((tmp_path / "cache" / "training").glob("*.pt"))) == 1
    shared = {r.simulator: r.metrics.get("training_shared", 0.0) for r in out.results}
    assert sorted(shared.values()) == [0.0, 1.0, 1.0]  # the first cell trained, two loaded
    # the report says which fit times leave the training out (one headline row per cell)
    assert headline_markdown(out.rows).count("(training shared)") == 2


def test_the_precisions_of_the_dense_baseline_share_one_training(tmp_path):
    """gpu-mlp, gpu-mlp-bf16 and gpu-mlp-int8 train the same fp32 network: once per compare,
    and each precision's cell equals the one it would give trained alone."""
    small = {"epochs": 2, "hidden": (16,), "batch_size": 64, "device": "cpu"}
    names = ("gpu-mlp", "gpu-mlp-bf16", "gpu-mlp-int8")
    out = compare(["digits"], list(names), overrides=dict.fromkeys(names, small), out_dir=tmp_path,
                  progress=False, log=lambda m: None, report=False)
    assert out.computed == 3
    assert len(list((tmp_path / "cache" / "training").glob("*.pt"))) == 1
    shared = {r.simulator: r.metrics.get("training_shared", 0.0) for r in out.results}
    assert sorted(shared.values()) == [0.0, 1.0, 1.0]
    reg = registry()
    task = reg.task("digits")
    alone = reg.simulator("gpu-mlp-int8", **small).fit(task, seed=0).evaluate(task)
    shared_int8 = next(r for r in out.results if r.simulator == "gpu-mlp-int8")
    assert alone.accuracy == shared_int8.accuracy
    assert dict(alone.ledger.totals) == dict(shared_int8.ledger.totals)


def test_a_prefetch_leaves_a_training_under_way_to_the_process_doing_it(tmp_path):
    """A fit-only cell (compare --jobs) must not sit blocked while another worker trains the
    same network: it returns at once, and the cell that needs the weights waits instead."""
    from nonvon._io import content_key
    from nonvon.training_memo import _locked

    calls = []
    with _locked(tmp_path / f"{content_key({'r': 1})}.lock"):  # someone is training it
        assert shared_training(_net(), {"r": 1}, lambda: calls.append(1), tmp_path,
                               wait=False) is False
    assert calls == []
    # with the lock free, a prefetch trains and files the weights like any other cell
    assert shared_training(_net(), {"r": 1}, lambda: calls.append(1), tmp_path, wait=False) is False
    assert calls == [1] and (tmp_path / f"{content_key({'r': 1})}.pt").exists()


def test_run_context_carries_prefetch_to_workers():
    ctx = RunContext(concurrent_cells=3, prefetch=True)
    assert RunContext.from_json(ctx.to_json()) == ctx
