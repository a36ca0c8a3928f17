"""Low-dimensional HDC (issue #24): the learned encoder's accuracy, integer inference, accounting,
state round trip and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nonvon.errors import ConfigError, IncompatibleError
from nonvon.registry import registry
from nonvon.simulators.hdc import HDCLowDim, HDCProjection, LowDimConfig, quantize
from nonvon.simulators.hdc.lowdim import binarize_inputs
from nonvon.simulators.hdc.packing import MAX_DIMENSIONS

# short training, so each fit stays well under a second on the digits task
FAST = {"encoder_epochs": 20}


@pytest.fixture(scope="module")
def lowdim64(digits_task):
    sim = HDCLowDim(dimensions=64, **FAST).fit(digits_task, seed=0)
    return sim, sim.evaluate(digits_task)


@pytest.fixture
def one_thread():
    """Float sums in another order (more threads) train another model: the margin below was
    measured with one thread (with two, seed 0 gives 85.0% vs 82.2%: 0.2 points short)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_beats_the_random_projection_at_64_dimensions(reg, one_thread):
    # the whole digits task (1,437 training samples): a trained encoder needs data, and on the
    # 600-sample test fixture it does not beat the sign projection (79.5% vs 82.5%, seed 0)
    task = reg.task("digits")
    new = HDCLowDim(dimensions=64).fit(task, seed=0).evaluate(task)
    # the old encoder at D = 64: its default periodic code and its sign variant (its better
    # one on digits); receptive fields are off because digits are 8 x 8
    old = [HDCProjection(dimensions=64, receptive_field=0, **kw).fit(task, seed=0).evaluate(task)
           for kw in ({}, {"activation": "sign"})]
    best_old = max(r.accuracy for r in old)
    assert new.accuracy >= best_old + 0.03, (new.accuracy, [r.accuracy for r in old])


def test_integer_inference_matches_torchhd_and_closed_form_counts(lowdim64, digits_task):
    sim, result = lowdim64
    # the packed search agrees with torchhd's unpacked Hamming similarity on the same vectors
    assert np.array_equal(sim._predict(digits_task.x_test).labels, sim.predict_unpacked(digits_task.x_test))
    enc = sim.encoder
    xq = binarize_inputs(digits_task.x_test, 0.2)
    # each layer is an integer sum of the weights of the set input bits, against a threshold
    h1 = (xq.numpy() @ enc.weights[0].numpy().astype(np.int64)) >= enc.thresholds[0].numpy()
    h2 = (h1.astype(np.int64) @ enc.weights[1].numpy().astype(np.int64)) >= enc.thresholds[1].numpy()
    assert np.array_equal(enc.encode(xq).numpy(), h2)
    n, f, d, c = len(xq), digits_task.n_features, 64, digits_task.n_classes
    active = int(xq.sum()) * d + int(h1.sum()) * d  # one add per set input bit and dimension
    totals = dict(result.ledger.totals)
    assert totals == {
        "add_int32": active, "hv_read_bit": active * 4 + n * c * 64,
        "cmp_int32": 2 * n * d + n * (c - 1), "sram_byte": n * f + 2 * n * d * 4,
        "xor_bit": n * c * 64, "popcount_bit": n * c * 64,
        "host_transfer_byte": n * (f + 1), "cmp_int8": n * f}  # one threshold compare per pixel
    # weights at 4 bits, int32 thresholds, packed class vectors
    assert result.ledger.resident_bytes == (f * d + d * d) * 4 // 8 + 2 * d * 4 + c * 8
    assert result.precision == "binary"


def test_state_round_trips_exactly(lowdim64, digits_task):
    sim, result = lowdim64
    fresh = HDCLowDim(dimensions=64, **FAST).load_state_tensors(sim.state_tensors(), digits_task)
    again = fresh.evaluate(digits_task)
    assert again.accuracy == result.accuracy and dict(again.ledger.totals) == dict(result.ledger.totals)
    assert again.ledger.resident_bytes == result.ledger.resident_bytes
    with pytest.raises(ConfigError, match="shapes"):
        HDCLowDim(dimensions=64, layers=2).load_state_tensors(
            {**sim.state_tensors(), "encoder.weight1": torch.zeros(3, 3, dtype=torch.int8)}, digits_task)


def test_retraining_learners_and_one_layer_run(digits_task):
    sim = HDCLowDim(dimensions=32, layers=1, weight_bits=1, learner="centroid", encoder_epochs=5)
    result = sim.fit(digits_task, seed=0).evaluate(digits_task)
    assert result.accuracy > 0.5
    assert result.ledger.resident_bytes == digits_task.n_features * 32 // 8 + 32 * 4 + 10 * 8


@pytest.mark.parametrize("overrides, match", [
    ({"dimensions": 0}, "dimensions=0 must be a positive integer"),
    ({"dimensions": -3}, "dimensions=-3 must be a positive integer"),
    ({"dimensions": MAX_DIMENSIONS + 1}, "exceeds the packing limit"),
    ({"dimensions": 3_000_000, "weight_bits": 8}, "would not be exact in float32"),
    ({"dimensions": 100, "pad": False}, "not a multiple of the 64-bit"),
    ({"layers": 3}, "layers=3"),
    ({"weight_bits": 0}, "weight_bits=0"),
    ({"input_threshold": 1.5}, "input_threshold=1.5"),
    ({"encoder": "projection"}, "unknown encoder 'projection'"),
    ({"learner": "jiont"}, "unknown learner 'jiont'"),
    ({"encoder_samples": 1}, "encoder_samples=1"),
])
def test_bad_config_is_a_clear_error(overrides, match):
    with pytest.raises(ConfigError, match=match) as e:
        LowDimConfig(**overrides)
    assert e.value.hint


def test_more_encoder_samples_than_the_task_has_fails_before_training(digits_task, monkeypatch):
    n = len(digits_task.y_train)

    def no_training(*a, **k):
        raise AssertionError("trained before the check")

    monkeypatch.setattr("nonvon.simulators.hdc.lowdim.LearnedEncoder.fit", no_training)
    with pytest.raises(IncompatibleError, match=f"encoder_samples={n + 1} exceeds the {n} training") as e:
        HDCLowDim(encoder_samples=n + 1).fit(digits_task)
    assert str(n) in e.value.hint
    with pytest.raises(IncompatibleError, match="encoder_batch_size=128 exceeds the 100 samples") as e:
        HDCLowDim(encoder_samples=100).fit(digits_task)
    assert "encoder_batch_size <= 100" in e.value.hint


def test_registered_and_priced_by_the_hdc_presets(reg):
    assert registry().simulators["hdc-lowdim"] is HDCLowDim
    names = {p.name for p in reg.presets_for("hdc", HDCLowDim().op_kinds)}
    assert {"hdc-cmos-45nm", "hdc-asic-28nm", "hdc-imc-pcm"} <= names


def test_binarized_inputs_follow_the_threshold():
    x = np.array([[0.0, 0.19, 0.2, 1.0]], dtype=np.float32)
    assert binarize_inputs(x, 0.2).tolist() == [[0, 0, 1, 1]]
    assert quantize(x, 2).tolist() == [[0, 0, 0, 1]]  # the projection's rounding differs


# -- the designed ID-level item memory (after Basaklar et al., tinyML 2021; see design.py) -----

DESIGNED = {"encoder": "designed", "encoder_epochs": 30, "encoder_batch_size": 64, "encoder_lr": 0.03}


@pytest.fixture(scope="module")
def designed64(digits_task):
    sim = HDCLowDim(dimensions=64, **DESIGNED).fit(digits_task, seed=0)
    return sim, sim.evaluate(digits_task)


def test_designed_item_memory_beats_the_random_one_at_equal_dimension(designed64, digits_task):
    from nonvon.simulators.hdc import HDCIDLevel

    _, new = designed64
    # the same encoding, item memory and operations at D = 64 with random torchhd hypervectors
    # (16 levels as hdc-idlevel defaults, and the designed encoder's 4)
    old = [HDCIDLevel(dimensions=64, levels=lv).fit(digits_task, seed=0).evaluate(digits_task)
           for lv in (16, 4)]
    assert new.accuracy >= max(r.accuracy for r in old) + 0.15, (new.accuracy, [r.accuracy for r in old])


def test_designed_levels_keep_the_level_similarity_structure(designed64):
    from nonvon.simulators.hdc.design import level_flips

    enc = designed64[0].encoder
    lv = enc._lv.to(torch.int64)  # (L, D)
    # every dimension flips exactly once from level 0 to level L - 1: no constant dimension,
    # and the Hamming distance of two levels grows with their distance (never shrinks)
    assert level_flips(lv).tolist() == [1] * 64
    dist = (lv[:, None, :] != lv[None, :, :]).sum(-1)
    for i in range(enc.levels):
        assert all(dist[i, j] <= dist[i, j + 1] for j in range(i, enc.levels - 1))
        assert all(dist[i, j] >= dist[i, j + 1] for j in range(i))


def test_designed_encoder_inference_matches_torchhd_and_the_id_level_counts(designed64, digits_task):
    sim, result = designed64
    assert np.array_equal(sim._predict(digits_task.x_test).labels, sim.predict_unpacked(digits_task.x_test))
    enc = sim.encoder
    xq = quantize(digits_task.x_test, 4)
    # the record-based encoding, written out: majority of ID_j XOR L[q_j] and the tie-break
    keys, lv, tb = enc._keys.numpy(), enc._lv.numpy(), enc._tb.numpy()
    ones = (keys[None, :, :] ^ lv[xq.numpy()]).sum(1) + tb
    assert np.array_equal(enc.encode(xq).numpy(), ones > (digits_task.n_features + 1) // 2)
    n, f, d, c = len(xq), digits_task.n_features, 64, digits_task.n_classes
    assert dict(result.ledger.totals) == {
        "xor_bit": n * f * d + n * c * 64, "popcount_bit": n * (f + 1) * d + n * c * 64,
        "cmp_int32": n * d + n * (c - 1), "hv_read_bit": n * (2 * f + 1) * d + n * c * 64,
        "sram_byte": n * f, "host_transfer_byte": n * (f + 1), "cmp_int8": n * f * 2}
    assert result.ledger.resident_bytes == (f + 4 + 1) * d // 8 + c * 8


def test_designed_state_round_trips_exactly(designed64, digits_task):
    sim, result = designed64
    fresh = HDCLowDim(dimensions=64, **DESIGNED).load_state_tensors(sim.state_tensors(), digits_task)
    again = fresh.evaluate(digits_task)
    assert again.accuracy == result.accuracy and dict(again.ledger.totals) == dict(result.ledger.totals)
    with pytest.raises(ConfigError, match="shapes"):
        HDCLowDim(dimensions=64, **{**DESIGNED, "levels": 8}).load_state_tensors(sim.state_tensors(),
                                                                                 digits_task)
    with pytest.raises(ConfigError, match="levels=1"):
        LowDimConfig(encoder="designed", levels=1)


def _study():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "studies" / "hdc_lowdim.py"
    spec = importlib.util.spec_from_file_location("hdc_lowdim_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_merges_rows_and_checks_the_dimension_reduction_claim():
    study = _study()

    def row(enc, d, seed, acc):
        return {"task": "mnist", "encoder": enc, "dimensions": d, "seed": seed, "accuracy": acc}

    old = [row("learned", 32, 0, 0.93), row("idlevel", 512, 0, 0.44), row("idlevel", 2048, 0, 0.76),
           row("designed", 16, 0, 0.10)]
    new = [row("designed", 16, 0, 0.87), row("designed", 64, 0, 0.70), row("learned", 32, 1, 0.95)]
    rows = study.merge_rows(old, new)
    # the recomputed cell replaces the old one; every other row is kept
    assert sorted((r["encoder"], r["dimensions"], r["seed"], r["accuracy"]) for r in rows) == [
        ("designed", 16, 0, 0.87), ("designed", 64, 0, 0.70), ("idlevel", 512, 0, 0.44),
        ("idlevel", 2048, 0, 0.76), ("learned", 32, 0, 0.93), ("learned", 32, 1, 0.95)]
    lines = study.reproduction_lines(rows)
    # designed at 16 against random ID-level at 32 x 16 = 512 (met), at 64 against 2048 (not met)
    claim = [s for s in lines if "designed ID-level" in s]
    assert len(claim) == 2
    assert "D = 16: 87.00% (1 seed) vs random ID-level at D = 512" in claim[0]
    assert "reduction met here" in claim[0]
    assert "D = 2048" in claim[1] and "not met here" in claim[1]
    # two seeds: mean +- sample standard deviation
    assert "ours 94.00% +- 1.41 (2 seeds) - not met" in next(s for s in lines if "D = 32: published" in s)
    # hdc-lowdim rows are told apart by their encoder option
    assert study.encoder_of({"simulator": "hdc-lowdim", "sim_config": {"encoder": "designed"}}) == "designed"
    assert study.encoder_of({"simulator": "hdc-lowdim", "sim_config": {"encoder": "learned"}}) == "learned"
    assert study.encoder_of({"simulator": "gpu-cnn", "sim_config": {}}) is None
