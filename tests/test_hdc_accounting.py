"""HDC accounting (issue #17): every cost class a chip has, resident memory and its placement,
input encoding and host transfer, precision, and the trained state's exact round trip."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from nonvon.energy_models import price
from nonvon.errors import ConfigError, IncompatibleError, NonvonError
from nonvon.registry import registry
from nonvon.simulators.hdc import HDCIDLevel, HDCProjection

F, C = 64, 10  # the digits task: 8 x 8 pixels, 10 classes

TINY = {
    "hdc-projection": {"dimensions": 512, "receptive_field": 4, "epochs": 2},
    "hdc-idlevel": {"dimensions": 512, "learner": "centroid"},
}


@pytest.fixture(scope="module", params=sorted(TINY))
def fitted(request, digits_task):
    sim = registry().simulator(request.param, **TINY[request.param]).fit(digits_task, seed=0)
    return sim, sim.evaluate(digits_task)


def test_every_chip_preset_prices_memory_io_and_static(fitted, check_chip_presets):
    sim, result = fitted
    check_chip_presets(sim, result, {"hdc-asic-28nm", "hdc-imc-pcm"})


def test_the_core_preset_carries_no_io(fitted, reg):
    _, result = fitted
    by_class = price(result.ledger, reg.preset("hdc-cmos-45nm")).energy_by_class_j
    assert by_class["compute"] > 0 and by_class["memory"] > 0
    assert by_class["io"] == by_class["static"] == by_class["interconnect"] == 0


def test_precision_is_that_of_the_class_vectors(digits_task):
    assert HDCIDLevel().precision == "binary" and HDCProjection().precision == "binary"
    sim = HDCProjection(model="map", dimensions=128, receptive_field=0, epochs=1).fit(digits_task)
    assert sim.precision == "fp32" and sim.evaluate(digits_task, limit=5).precision == "fp32"


@pytest.mark.parametrize("cls, cfg, encoder_bytes", [
    # ID-level: key, level and tie-break hypervectors, one bit per component
    (HDCIDLevel, {"levels": 16}, math.ceil((F + 16 + 1) * 640 / 8)),
    # projection over all inputs: F x D sign bits, int32 thresholds
    (HDCProjection, {"receptive_field": 0, "activation": "sign"}, F * 640 // 8 + 640 * 4),
    # 4 x 4 receptive fields: 16 signs and a one-byte (row, column) origin per dimension, int16 offsets
    (HDCProjection, {"receptive_field": 4}, 640 * 16 // 8 + 640 * 2 + 640 * 2),
])
def test_resident_bytes_are_item_memory_and_class_vectors(digits_task, cls, cfg, encoder_bytes):
    for model, per_class in (("bsc", 8 * 10), ("map", 4 * 640)):  # 640 bits = 10 words
        sim = cls(dimensions=640, epochs=1, model=model, **cfg).fit(digits_task)
        assert sim.evaluate(digits_task, limit=3).ledger.resident_bytes == encoder_bytes + C * per_class


def test_a_model_larger_than_the_chip_spills_to_off_chip_memory(digits_task, reg):
    asic = reg.preset("hdc-asic-28nm")
    small = HDCIDLevel(dimensions=512, learner="centroid").fit(digits_task).evaluate(digits_task, limit=20)
    big = HDCIDLevel(dimensions=8192, learner="centroid").fit(digits_task).evaluate(digits_task, limit=20)
    assert small.ledger.resident_bytes < asic.onchip_bytes < big.ledger.resident_bytes
    assert price(small.ledger, asic).placement["spilled_fraction"] == 0
    rep = price(big.ledger, asic)
    spilled = 1 - asic.onchip_bytes / big.ledger.resident_bytes
    assert rep.placement["spilled_fraction"] == pytest.approx(spilled)
    assert rep.breakdown_j["dram_byte"] > 0


@pytest.mark.parametrize("levels, host_bytes, compares", [(16, 1, 4), (256, 1, 0), (5, 1, 3), (512, 2, 0)])
def test_host_transfer_and_input_requantization(digits_task, levels, host_bytes, compares):
    sim = HDCIDLevel(dimensions=128, levels=levels, learner="centroid").fit(digits_task)
    per = sim.evaluate(digits_task, limit=7).ledger.per_inference()
    assert per["host_transfer_byte"] == F * host_bytes + 1  # features in, class index out
    assert per.get("cmp_int8", 0) == F * compares  # binary search over the level boundaries
    assert ("cmp_int8" in sim.op_kinds) == (compares > 0)


@pytest.mark.parametrize("cls, cfg", [
    (HDCProjection, {"dimensions": 512, "receptive_field": 4, "epochs": 2}),  # period fitted to data
    (HDCProjection, {"dimensions": 256, "receptive_field": 0, "activation": "sign", "epochs": 2}),
    (HDCProjection, {"dimensions": 300, "receptive_field": 0, "model": "map", "epochs": 2}),
    (HDCIDLevel, {"dimensions": 512, "learner": "adapthd", "epochs": 2}),
])
def test_state_round_trip_gives_the_same_accuracy_and_ledger(digits_task, cls, cfg):
    sim = cls(**cfg).fit(digits_task, seed=3)
    before = sim.evaluate(digits_task)
    tensors = st_load(st_save(sim.state_tensors()))  # through the file format a cached cell uses
    again = cls(**cfg).load_state_tensors(tensors, digits_task, seed=3).evaluate(digits_task)
    assert again.accuracy == before.accuracy and again.ledger == before.ledger


def test_state_errors_are_clear(digits_task):
    with pytest.raises(ConfigError, match="not been fitted"):
        HDCIDLevel(dimensions=128).state_tensors()
    sim = HDCIDLevel(dimensions=128, learner="centroid").fit(digits_task, seed=1)
    tensors = sim.state_tensors()
    with pytest.raises(IncompatibleError, match=r"\(10, 256\)"):
        HDCIDLevel(dimensions=256).load_state_tensors(tensors, digits_task)
    with pytest.raises(ConfigError, match="missing tensors"):
        HDCIDLevel(dimensions=128).load_state_tensors({"weights": tensors["weights"]}, digits_task)
    wrong_seed = {**tensors, "encoder.seed": torch.tensor(2)}  # another item memory than trained
    with pytest.raises(NonvonError, match="differs from the trained one") as e:
        HDCIDLevel(dimensions=128).load_state_tensors(wrong_seed, digits_task)
    assert "retrain" in e.value.hint
