"""Exact, hand-priced checks of energy_models (pricing, placement, latency, ledgers, presets):
each pins a number or a branch that a mutant of that code would change.

Written against the mutation run recorded in docs/results/mutation/README.md; they import
nothing heavier than the energy models, so a mutant's test run takes about a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nonvon.energy_models import OpLedger, landauer_j, preset_from_dict, price
from nonvon.energy_models.catalog import CATALOG, OpKind, get_op_kind, register_op_kind
from nonvon.energy_models.pricing import (
    BOLTZMANN_J_PER_K,
    EnergyReport,
    modelled_latency_s,
    place_memory,
)
from nonvon.errors import ConfigError, IncompatibleError, PresetError, UnknownNameError

PJ = 1e-12


def approx(expected, rel=1e-9):
    """``pytest.approx`` without its absolute tolerance of 1e-12, which would accept any two
    energies in the pJ range (and the Landauer bound of any constant) as equal."""
    return pytest.approx(expected, rel=rel, abs=0)


@pytest.fixture(autouse=True)
def _paradigms_without_plugins(monkeypatch):
    """Presets name their paradigms; checking a name would load every paradigm plugin (and
    torch, 2 s). These tests are about prices, so the built-in names stand in for the
    registry (tests/test_presets.py checks paradigm names against the real one)."""
    from nonvon import paradigms

    monkeypatch.setattr(paradigms, "paradigm_names",
                        lambda: ["gpu", "spiking", "optical", "hdc", "quantum"])
    monkeypatch.setattr(paradigms, "broken_paradigms", lambda: [])


def hand_preset(**extra) -> object:
    """A chip-boundary preset whose low, nominal and high values all differ."""
    data = {
        "name": "hand", "paradigms": ["gpu"], "boundary": "core",
        "ops": {
            "mac_int8": {"energy_pj": 2.0, "low_pj": 1.0, "high_pj": 5.0, "time_s": 1e-9,
                         "resource": "compute", "source": "hand"},
            "add_int8": {"energy_pj": 0.5, "low_pj": 0.25, "high_pj": 0.75, "time_s": 4e-9,
                         "resource": "compute", "source": "hand"},
            "sram_byte": {"energy_pj": 10.0, "low_pj": 8.0, "high_pj": 20.0, "time_s": 2e-9,
                          "resource": "memory", "source": "hand"},
            "kernel_launch": {"energy_pj": 1000.0, "time_s": 1e-6, "source": "hand"},
        },
    }
    for k, v in extra.items():
        data[k] = v
    return preset_from_dict(data)


# -- pricing: nominal, low and high, each from its own preset value ------------------------
def test_price_sums_nominal_low_and_high_from_their_own_preset_values():
    ledger = OpLedger({"mac_int8": 300, "add_int8": 60, "sram_byte": 30}, n_inferences=3)
    r = price(ledger, hand_preset())
    # per inference: 100 MACs, 20 adds, 10 SRAM bytes
    assert r.breakdown_j == {"mac_int8": 100 * 2.0 * PJ, "add_int8": 20 * 0.5 * PJ,
                             "sram_byte": 10 * 10.0 * PJ}
    assert r.energy_j == approx((200 + 10 + 100) * PJ, rel=1e-15)
    assert r.low_j == approx((100 * 1.0 + 20 * 0.25 + 10 * 8.0) * PJ, rel=1e-15)
    assert r.high_j == approx((100 * 5.0 + 20 * 0.75 + 10 * 20.0) * PJ, rel=1e-15)
    assert r.low_j < r.energy_j < r.high_j
    assert r.energy_by_class_j == {"compute": approx(210 * PJ), "memory": 100 * PJ,
                                   "interconnect": 0.0, "io": 0.0, "static": 0.0}
    assert r.preset == "hand" and r.boundary == "core"
    assert r.assumptions == ("add_int8: hand", "mac_int8: hand", "sram_byte: hand")


def test_latency_overlaps_resources_and_adds_serial_ones():
    ledger = OpLedger({"mac_int8": 100, "add_int8": 20, "sram_byte": 10, "kernel_launch": 2}, 1)
    r = price(ledger, hand_preset())
    compute = 100 * 1e-9 + 20 * 4e-9   # 180 ns, one resource: they add
    memory = 10 * 2e-9                 # 20 ns, overlaps compute
    serial = 2 * 1e-6                  # kernel launches: serial, add to the total
    assert r.latency_s == approx(serial + max(compute, memory), rel=1e-12)
    assert r.energy_by_class_j["io"] == 2 * 1000.0 * PJ


def test_latency_is_none_without_timing_zero_for_nothing_and_time_kinds_add():
    untimed = preset_from_dict({"name": "u", "paradigms": ["gpu"], "boundary": "core", "ops": {
        "mac_int8": {"energy_pj": 1.0, "source": "s"}, "sram_byte": {"energy_pj": 1.0, "source": "s"}}})
    assert modelled_latency_s({"mac_int8": 5.0}, untimed) is None
    assert price(OpLedger({"mac_int8": 5}, 1), untimed).latency_s is None
    assert modelled_latency_s({}, untimed) == 0.0
    spiking = preset_from_dict({"name": "t", "paradigms": ["spiking"], "boundary": "core",
                                "absent": {"memory": "held in the analog core (hand preset)"}, "ops": {
        "emulation_s": {"power_w": 2.0, "low_w": 1.0, "high_w": 3.0, "source": "s"},
        "synop": {"energy_pj": 1.0, "time_s": 1e-6, "resource": "router", "source": "s"}}})
    assert modelled_latency_s({"emulation_s": 0.5, "synop": 1000.0}, spiking) == approx(0.501)
    r = price(OpLedger({"emulation_s": 1.0, "synop": 4}, 2), spiking)
    # device time is priced in W x s (no pJ scaling): 0.5 s at 2 W
    assert r.breakdown_j["emulation_s"] == 1.0
    assert (r.low_j, r.high_j) == (approx(0.5 + 2 * PJ), approx(1.5 + 2 * PJ))


def test_static_power_is_charged_over_the_latency_with_its_own_bounds():
    p = hand_preset(static={"power_w": 2.0, "low_w": 1.0, "high_w": 4.0, "source": "leak"},
                    boundary="chip", absent={"interconnect": "one core: no network on chip"})
    r = price(OpLedger({"mac_int8": 10}, 1), p)
    lat = 10 * 1e-9
    assert r.latency_s == approx(lat)
    assert r.breakdown_j["static"] == approx(2.0 * lat)
    assert r.low_j == approx(10 * 1.0 * PJ + 1.0 * lat)
    assert r.high_j == approx(10 * 5.0 * PJ + 4.0 * lat)
    assert r.energy_by_class_j["static"] == approx(2.0 * lat)
    assert r.assumptions[-2].startswith("static 2.0 W over the modelled latency: leak")
    assert r.assumptions[-1] == "interconnect absent: one core: no network on chip"
    only_high = hand_preset(static={"power_w": 0.0, "high_w": 1.0, "source": "bound"},
                            boundary="chip", absent={"interconnect": "one core: no network"})
    r = price(OpLedger({"mac_int8": 10}, 1), only_high)
    assert r.breakdown_j["static"] == 0.0 and r.high_j == approx(50 * PJ + lat)


def test_static_power_without_any_timing_is_refused():
    p = preset_from_dict({"name": "s", "paradigms": ["gpu"], "boundary": "core",
                          "static": {"power_w": 1.0, "source": "x"},
                          "ops": {"mac_int8": {"energy_pj": 1.0, "source": "s"},
                                  "sram_byte": {"energy_pj": 1.0, "source": "s"}}})
    with pytest.raises(IncompatibleError, match="static power but no timing"):
        price(OpLedger({"mac_int8": 1}, 1), p)
    with pytest.raises(PresetError, match="no latency exists"):
        p.check_latency_model({"mac_int8"}, "gpu-mlp")
    p.check_latency_model({"emulation_s"}, "a device-time kind gives a latency")


def test_an_unpriced_kind_is_refused_never_priced_at_zero():
    with pytest.raises(IncompatibleError, match=r"cannot price op kinds \['xor_bit'\]"):
        price(OpLedger({"mac_int8": 1, "xor_bit": 8}, 1), hand_preset())
    assert hand_preset().can_price({"xor_bit", "mac_int8", "dram_byte"}) == ["dram_byte", "xor_bit"]


def test_report_to_dict_lists_assumptions():
    d = price(OpLedger({"mac_int8": 1}, 1), hand_preset()).to_dict()
    assert d["assumptions"] == ["mac_int8: hand"] and d["energy_j"] == 2 * PJ
    assert isinstance(d["assumptions"], list)
    assert EnergyReport("x", 1.0, 1.0, 1.0, {}, None, ("a",)).to_dict()["assumptions"] == ["a"]


# -- Landauer: kT ln 2 per overwritten bit ---------------------------------------------------
def test_landauer_bound_is_kt_ln2_per_output_bit():
    """Landauer, IBM J. Res. Dev. 5, 183 (1961): erasing one bit dissipates at least kT ln 2,
    2.87e-21 J at 300 K (k = 1.380649e-23 J/K, exact in the 2019 SI)."""
    assert BOLTZMANN_J_PER_K == 1.380649e-23
    one_bit = landauer_j({"xor_bit": 1.0})
    assert one_bit == approx(2.870978e-21, rel=1e-6)
    assert one_bit == approx(1.380649e-23 * 300 * math.log(2), rel=1e-15)
    # mac_int8 overwrites 8 bits; per inference; temperature scales it
    ledger = OpLedger({"mac_int8": 30, "xor_bit": 6}, 3)
    assert landauer_j(ledger) == approx((10 * 8 + 2) * one_bit, rel=1e-15)
    assert landauer_j(ledger, temperature_k=150.0) == approx(landauer_j(ledger) / 2)
    assert landauer_j({"laser_optical_zj": 1e9}) == 0.0  # no digital state overwritten


# -- memory placement -----------------------------------------------------------------------
def tiered(onchip=1000.0) -> object:
    mem = {"sram_tiers": [[100, 1.0], [1000, 3.0], [10000, 9.0]], "source": "tiers src"}
    if onchip is not None:
        mem["onchip_bytes"] = onchip
    return hand_preset(memory=mem, ops={**hand_preset_ops(), "dram_byte": {
        "energy_pj": 100.0, "low_pj": 50.0, "high_pj": 200.0, "source": "dram"}})


def hand_preset_ops() -> dict:
    return {"mac_int8": {"energy_pj": 2.0, "source": "hand"},
            "sram_byte": {"energy_pj": 10.0, "source": "hand"},
            "hv_read_bit": {"energy_pj": 0.5, "source": "hand"}}


@pytest.mark.parametrize(("resident", "array", "pj"), [(1.0, 100.0, 1.0), (100.0, 100.0, 1.0),
                                                        (101.0, 1000.0, 3.0), (1000.0, 1000.0, 3.0)])
def test_the_smallest_array_that_holds_the_data_prices_sram(resident, array, pj):
    place = place_memory(resident, tiered())
    assert place.sram_array_bytes == array and place.spilled_fraction == 0.0
    assert (place.sram_price.value, place.sram_price.low, place.sram_price.high) == (pj, pj, pj)
    assert f"the {array:,.0f}-byte array holding {resident:,.0f} resident bytes" in place.sram_price.source
    assert place.sram_price.source.startswith("tiers src")
    r = price(OpLedger({"sram_byte": 10}, 1, resident_bytes=resident), tiered())
    assert r.breakdown_j["sram_byte"] == 10 * pj * PJ
    assert r.placement == {"resident_bytes": resident, "spilled_fraction": 0.0,
                           "onchip_bytes": 1000.0, "sram_array_bytes": array}


def test_without_capacity_the_largest_array_prices_and_nothing_spills():
    place = place_memory(50_000.0, tiered(onchip=None))
    assert place.spilled_fraction == 0.0 and place.sram_array_bytes == 10000.0
    assert place.sram_price.value == 9.0 and place.onchip_bytes is None
    assert place.to_dict() == {"resident_bytes": 50_000.0, "spilled_fraction": 0.0,
                               "sram_array_bytes": 10000.0}
    nothing = place_memory(0.0, tiered())
    assert nothing.sram_price is None and nothing.sram_array_bytes is None
    assert nothing.to_dict() == {"resident_bytes": 0.0, "spilled_fraction": 0.0, "onchip_bytes": 1000.0}


def test_data_beyond_capacity_spills_that_share_of_onchip_accesses_to_dram():
    resident = 4000.0  # 1000 fit: 3/4 of every on-chip access goes off chip
    ledger = OpLedger({"sram_byte": 800, "hv_read_bit": 64, "mac_int8": 5}, 1,
                      resident_bytes=resident)
    r = price(ledger, tiered())
    assert r.placement["spilled_fraction"] == 0.75
    assert r.breakdown_j["sram_byte"] == approx(200 * 3.0 * PJ)   # held: 1000-byte array
    assert r.breakdown_j["hv_read_bit"] == approx(16 * 0.5 * PJ)
    # 600 bytes + 48 bits (6 bytes) moved to dram_byte
    assert r.breakdown_j["dram_byte"] == approx(606 * 100.0 * PJ)
    assert r.low_j == approx((200 * 3 + 16 * 0.5 + 606 * 50 + 5 * 2) * PJ)
    assert r.breakdown_j["mac_int8"] == 5 * 2.0 * PJ  # compute does not move
    assert any("75.0% of on-chip accesses spilled to dram_byte (tiers src)" in a
               for a in r.assumptions)


def test_a_spill_with_no_dram_to_spill_to_is_refused():
    p = hand_preset(memory={"onchip_bytes": 10, "source": "cap"})
    with pytest.raises(IncompatibleError, match="prices no off-chip memory"):
        price(OpLedger({"sram_byte": 1}, 1, resident_bytes=11.0), p)
    ok = price(OpLedger({"sram_byte": 1}, 1, resident_bytes=10.0), p)
    assert ok.placement["spilled_fraction"] == 0.0
    no_access = price(OpLedger({"mac_int8": 1}, 1, resident_bytes=11.0), p)  # nothing to move
    assert "dram_byte" not in no_access.breakdown_j


# -- ledgers ---------------------------------------------------------------------------------
def test_ledger_checks_counts_and_merges_exactly():
    a = OpLedger({"mac_int8": 10, "sram_byte": 4}, 2, resident_bytes=100)
    b = OpLedger({"mac_int8": 6}, 3, resident_bytes=50.5)
    m = a + b
    assert dict(m.totals) == {"mac_int8": 16.0, "sram_byte": 4.0} and m.n_inferences == 5
    assert m.resident_bytes == 100.0 and (b + a).resident_bytes == 100.0
    assert list(OpLedger({"sram_byte": 1, "add_int8": 1}, 1).totals) == ["add_int8", "sram_byte"]
    assert a.per_inference() == {"mac_int8": 5.0, "sram_byte": 2.0}
    s = a.scaled(3)
    assert dict(s.totals) == {"mac_int8": 30.0, "sram_byte": 12.0} and s.n_inferences == 2
    assert s.resident_bytes == 100.0
    assert a.with_resident_bytes(7).resident_bytes == 7.0
    assert OpLedger.empty(4).n_inferences == 4 and not OpLedger.empty().totals
    assert OpLedger.from_dict(a.to_dict()) == a
    assert OpLedger.from_dict({"totals": {"mac_int8": 1}, "n_inferences": 1}).resident_bytes == 0.0
    assert a.__add__(3) is NotImplemented
    assert OpLedger({"emulation_s": 0.25}, 1).totals["emulation_s"] == 0.25  # seconds: fractional ok


@pytest.mark.parametrize(("make", "match"), [
    (lambda: OpLedger({}, 0), "n_inferences=0 must be a positive int"),
    (lambda: OpLedger({}, True + 0.5), "must be a positive int"),
    (lambda: OpLedger({"mac_int8": -1}, 1), "is -1.0; counts are finite and >= 0"),
    (lambda: OpLedger({"mac_int8": float("nan")}, 1), "counts are finite"),
    (lambda: OpLedger({"mac_int8": 1.5}, 1), "not a whole number"),
    (lambda: OpLedger({}, 1, resident_bytes=-1), "resident_bytes=-1 must be"),
    (lambda: OpLedger({}, 1, resident_bytes=True), "resident_bytes=True must be"),
    (lambda: OpLedger({}, 1, resident_bytes=float("inf")), "must be a finite number"),
    (lambda: OpLedger.from_dict({"totals": {}}), "malformed ledger: missing 'n_inferences'"),
])
def test_ledger_refuses_bad_counts(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_ledger_refuses_unknown_kinds():
    with pytest.raises(UnknownNameError, match="unknown op kind 'mac_int9'"):
        OpLedger({"mac_int9": 1}, 1)


# -- the catalog -----------------------------------------------------------------------------
def test_catalog_kinds_and_registration_rules():
    assert get_op_kind("mac_int8").output_bits == 8 and get_op_kind("mac_fp32").output_bits == 32
    assert get_op_kind("sram_byte").memory_level == "onchip"
    assert get_op_kind("dram_byte").memory_level == "offchip"
    assert get_op_kind("kernel_launch").cost_class == "io"
    kind = OpKind("mut_test_op", "op", "a test kind", 1, "compute")
    assert register_op_kind(kind) is kind and register_op_kind(kind) is kind  # idempotent
    assert CATALOG["mut_test_op"] == kind
    bad = [(OpKind("mut_test_op", "op", "other", 2, "compute"), "already defined differently"),
           (OpKind("mut_u", "joule", "x", 0, "compute"), "unknown unit 'joule'"),
           (OpKind("mut_c", "op", "x", 0, "cooling"), "cost_class 'cooling'"),
           (OpKind("mut_m", "byte", "x", 0, "memory"), "memory_level=''"),
           (OpKind("mut_n", "op", "x", 0, "compute", "onchip"), "memory_level='onchip'"),
           (OpKind("mut_l", "byte", "x", 0, "memory", "cloud"), "memory_level='cloud'")]
    for k, match in bad:
        with pytest.raises(ConfigError, match=match):
            register_op_kind(k)
    assert "mut_u" not in CATALOG


# -- presets: bounds and the keys they come from ---------------------------------------------
def test_preset_bounds_default_to_the_nominal_and_must_bracket_it():
    p = hand_preset()
    assert (p.ops["kernel_launch"].low, p.ops["kernel_launch"].high) == (1000.0, 1000.0)
    assert (p.ops["mac_int8"].low, p.ops["mac_int8"].value, p.ops["mac_int8"].high) == (1.0, 2.0, 5.0)
    assert p.ops["mac_int8"].resource == "compute" and p.ops["kernel_launch"].resource == "serial"
    with pytest.raises(PresetError, match=r"low <= nominal <= high, got 3.0 <= 2.0 <= 5.0"):
        preset_from_dict({"name": "b", "paradigms": ["gpu"], "boundary": "core", "ops": {
            "mac_int8": {"energy_pj": 2.0, "low_pj": 3.0, "high_pj": 5.0, "source": "s"},
            "sram_byte": {"energy_pj": 1.0, "source": "s"}}})
    with pytest.raises(PresetError, match=r"1.0 <= 2.0 <= 1.5"):
        preset_from_dict({"name": "b", "paradigms": ["gpu"], "boundary": "core", "ops": {
            "mac_int8": {"energy_pj": 2.0, "low_pj": 1.0, "high_pj": 1.5, "source": "s"},
            "sram_byte": {"energy_pj": 1.0, "source": "s"}}})
    equal = preset_from_dict({"name": "e", "paradigms": ["gpu"], "boundary": "core", "ops": {
        "mac_int8": {"energy_pj": 2.0, "low_pj": 2.0, "high_pj": 2.0, "source": "s"},
        "sram_byte": {"energy_pj": 0.0, "source": "s"}}})
    assert equal.ops["sram_byte"].value == 0.0  # zero is a price (e.g. folded into another)


def test_preset_priced_classes_and_to_dict():
    p = hand_preset()
    assert p.priced_classes == {"compute", "memory", "io"}
    d = p.to_dict()
    assert d["ops"] == ["add_int8", "kernel_launch", "mac_int8", "sram_byte"]
    assert d["paradigms"] == ["gpu"] and d["boundary"] == "core" and d["bound"] is False
    assert d["onchip_bytes"] is None and d["absent"] == {}
    static = hand_preset(static={"power_w": 0.0, "high_w": 1.0, "source": "s"}, boundary="chip",
                         absent={"interconnect": "one core: no network"})
    assert "static" in static.priced_classes


# -- what the first mutation run left alive (docs/results/mutation/README.md) ---------------
def test_reports_placements_and_ledgers_are_immutable_with_empty_defaults():
    import dataclasses

    r = EnergyReport("x", 1.0, 0.5, 2.0, {}, None, ())
    assert r.boundary == "core" and r.energy_by_class_j == {} and r.placement == {}
    place = place_memory(1.0, hand_preset())
    ledger = OpLedger({}, 1)
    for obj, field in ((r, "energy_j"), (place, "spilled_fraction"), (ledger, "n_inferences")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, 0)
    assert ledger.resident_bytes == 0.0 and OpLedger.empty().n_inferences == 1
    rb = OpLedger({}, 1, resident_bytes=5).resident_bytes
    assert rb == 5.0 and type(rb) is float
    assert dict(OpLedger({"mac_int8": 0}, 1).totals) == {"mac_int8": 0.0}  # zero is a count
    merged = OpLedger({"mac_int8": 1}, 1) + OpLedger({"sram_byte": 3}, 1)
    assert dict(merged.totals) == {"mac_int8": 1.0, "sram_byte": 3.0}


@pytest.mark.parametrize(("make", "message", "hint"), [
    (lambda: OpLedger({}, 0), "ledger n_inferences=0 must be a positive int", None),
    (lambda: OpLedger({"mac_int8": -1}, 1),
     "ledger count for 'mac_int8' is -1.0; counts are finite and >= 0", None),
    (lambda: OpLedger({"mac_int8": 1.5}, 1), "ledger count for 'mac_int8' is 1.5, not a whole number",
     "count totals over samples, not per-sample means"),
    (lambda: OpLedger({}, 1, resident_bytes=-1), "ledger resident_bytes=-1 must be a finite number >= 0",
     "give the bytes of weights and state the on-chip accesses hold"),
    (lambda: OpLedger.from_dict({"totals": {}}), "malformed ledger: missing 'n_inferences'",
     "a ledger is {'totals': {kind: count}, 'n_inferences': N}"),
])
def test_ledger_messages_say_what_and_how_to_fix_it(make, message, hint):
    with pytest.raises(ConfigError) as e:
        make()
    assert (e.value.message, e.value.hint) == (message, hint)


def test_latency_adds_every_serial_op_and_device_time_in_any_order():
    p = preset_from_dict({"name": "s", "paradigms": ["spiking"], "boundary": "core",
                          "absent": {"memory": "held in the analog core (hand preset)"}, "ops": {
        "add_int8": {"energy_pj": 1.0, "source": "s"},                   # untimed, sorted first
        "dac_conversion_step": {"energy_pj": 1.0, "time_s": 1e-3, "source": "s"},  # serial
        "emulation_s": {"power_w": 1.0, "source": "s"},
        "kernel_launch": {"energy_pj": 1.0, "time_s": 1e-2, "source": "s"},        # serial
        "mac_int8": {"energy_pj": 1.0, "time_s": 1e-4, "resource": "compute", "source": "s"}}})
    per_inf = {"add_int8": 5.0, "dac_conversion_step": 2.0, "emulation_s": 0.5,
               "kernel_launch": 3.0, "mac_int8": 10.0}
    assert modelled_latency_s(per_inf, p) == approx(2e-3 + 0.5 + 3e-2 + 1e-3)
    assert modelled_latency_s({"add_int8": 5.0, "mac_int8": 10.0}, p) == approx(1e-3)
    assert modelled_latency_s({"emulation_s": 0.25}, p) == 0.25  # device time alone is timed
    assert modelled_latency_s({"add_int8": 1.0, "emulation_s": 0.25}, p) == 0.25


def test_pricing_messages_name_the_preset_the_kinds_and_the_fix():
    with pytest.raises(IncompatibleError) as e:
        price(OpLedger({"xor_bit": 8}, 1), hand_preset())
    assert e.value.message == "preset 'hand' cannot price op kinds ['xor_bit']"
    assert e.value.hint == ("add [ops.<kind>] entries to the preset or choose a preset that "
                            "prices them (`nonvon list`)")
    untimed_static = preset_from_dict({"name": "s", "paradigms": ["gpu"], "boundary": "core",
                                       "static": {"power_w": 0.0, "high_w": 1.0, "source": "x"},
                                       "ops": {"mac_int8": {"energy_pj": 1.0, "source": "s"},
                                               "sram_byte": {"energy_pj": 1.0, "source": "s"}}})
    with pytest.raises(IncompatibleError) as e:  # a high bound alone is static power too
        price(OpLedger({"mac_int8": 1}, 1), untimed_static)
    assert e.value.message == "preset 's' has static power but no timing for this ledger's ops"
    assert e.value.hint == ("give time_s for the op kinds, so static energy can be charged over "
                            "the latency")
    with pytest.raises(IncompatibleError) as e:
        price(OpLedger({"sram_byte": 1}, 1, resident_bytes=11.0),
              hand_preset(memory={"onchip_bytes": 10, "source": "cap"}))
    assert e.value.message == ("the network holds 11 bytes of weights and state; preset 'hand' "
                               "has 10 bytes on chip and prices no off-chip memory (dram_byte) "
                               "to spill to")
    assert e.value.hint == ("use a smaller network or lower weight precision, a preset with "
                            "off-chip memory, or several chips where the preset models "
                            "chip-to-chip links")


def test_assumptions_keep_every_op_source_beside_static_and_spill_notes():
    p = hand_preset(static={"power_w": 2.0, "source": "leak"}, boundary="chip",
                    absent={"interconnect": "one core: no network on chip"})
    r = price(OpLedger({"mac_int8": 10, "sram_byte": 1}, 1), p)
    assert r.assumptions[:2] == ("mac_int8: hand", "sram_byte: hand")
    spilled = price(OpLedger({"sram_byte": 800, "mac_int8": 5}, 1, resident_bytes=4000.0), tiered())
    assert spilled.assumptions[0] == "dram_byte: dram" and spilled.assumptions[1] == "mac_int8: hand"
    assert spilled.assumptions[-1] == ("memory: 4,000 resident bytes exceed the 1,000 on chip; "
                                       "75.0% of on-chip accesses spilled to dram_byte (tiers src)")


# -- the catalog's constants and kinds --------------------------------------------------------
def test_catalog_constants_and_op_kind_defaults():
    from nonvon.energy_models.catalog import COST_CLASSES, MEMORY_LEVELS, TIME_UNIT

    assert COST_CLASSES == ("compute", "memory", "interconnect", "io", "static")  # DESIGN.md 2b
    assert MEMORY_LEVELS == ("register", "onchip", "offchip") and TIME_UNIT == "s"
    k = OpKind("x", "op", "d")
    assert (k.output_bits, k.cost_class, k.memory_level) == (0, "", "")
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        k.unit = "s"


@pytest.mark.parametrize(("dtype", "bits"), [("fp32", 32), ("fp16", 16), ("bf16", 16),
                                             ("int8", 8), ("int32", 32)])
def test_arithmetic_kinds_overwrite_their_width_in_bits(dtype, bits):
    for op in ("mac", "mul", "add", "cmp"):
        kind = get_op_kind(f"{op}_{dtype}")
        assert (kind.unit, kind.output_bits, kind.cost_class) == ("op", bits, "compute")


def test_output_bits_follow_what_each_kind_erases():
    """Landauer counts only overwritten digital state: none for reads, transfers, analog or
    optical steps, unitary gates and device time; one bit for a 1-bit op or a measurement;
    8 per byte written to memory."""
    nothing = ["kernel_launch", "host_transfer_byte", "neuron_update_idle", "input_spike",
               "chip_timestep", "emulation_s", "laser_optical_zj", "dac_conversion_step",
               "modulator_symbol", "photodetector_read", "adc_conversion_step",
               "phase_shifter_hold", "optical_pass", "hv_read_bit", "qpu_gate_1q", "qpu_gate_2q",
               "qpu_layer_1q", "qpu_layer_2q", "qpu_readout", "qpu_shot", "spike_hop"]
    for name in nothing:
        assert get_op_kind(name).output_bits == 0, name
    for name in ("xor_bit", "popcount_bit", "qpu_measure", "spike_local", "spike_out"):
        assert get_op_kind(name).output_bits == 1, name
    assert get_op_kind("sram_byte").output_bits == get_op_kind("dram_byte").output_bits == 8
    assert get_op_kind("synop").output_bits == 8          # an 8-bit weight accumulated
    assert get_op_kind("neuron_update").output_bits == 16  # a 16-bit membrane state
    assert get_op_kind("hv_read_bit").memory_level == "onchip"
    units = {k.unit for k in CATALOG.values()}
    assert units <= {"op", "byte", "bit", "event", "s"}
    assert all(k.cost_class for k in CATALOG.values())


# -- presets: defaults, messages and every refusal -------------------------------------------
def test_preset_and_price_defaults():
    import dataclasses

    from nonvon.energy_models import OpPrice, Preset

    op = OpPrice(1.0, 1.0, 1.0, "s")
    assert (op.time_s, op.resource, op.note) == (None, "serial", "")
    p = Preset("p", "d", ("gpu",), {"mac_int8": op})
    assert (p.boundary, dict(p.absent), p.onchip_bytes, p.sram_tiers, p.memory_source) == (
        "core", {}, None, (), "")
    assert (p.static_power_w, p.static_low_w, p.static_high_w, p.static_source, p.path,
            p.bound) == (0.0, 0.0, 0.0, "", "", False)
    for obj, field in ((op, "value"), (p, "name")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, 0)
    loaded = hand_preset()
    assert (loaded.static_power_w, loaded.static_low_w, loaded.static_high_w,
            loaded.static_source) == (0.0, 0.0, 0.0, "")
    assert loaded.ops["mac_int8"].note == "" and loaded.ops["kernel_launch"].time_s == 1e-6


def test_check_latency_model_names_the_preset_or_its_file():
    base = {"name": "s", "paradigms": ["gpu"], "boundary": "core",
            "static": {"power_w": 0.0, "high_w": 1.0, "source": "x"},
            "ops": {"mac_int8": {"energy_pj": 1.0, "source": "s"},
                    "sram_byte": {"energy_pj": 1.0, "time_s": 1e-9, "source": "s"}}}
    p = preset_from_dict(base)
    with pytest.raises(PresetError) as e:  # a high bound alone is static power
        p.check_latency_model({"mac_int8"}, "gpu-mlp")
    assert e.value.message.startswith("preset 's': [static] power_w = 0.0 W, but none of the "
                                      "op kinds gpu-mlp counts (mac_int8) has a time_s")
    p.check_latency_model({"mac_int8", "sram_byte"}, "gpu-mlp")   # sram_byte is timed
    p.check_latency_model({"mac_int8", "xor_bit"} - {"xor_bit"} | {"emulation_s"}, "x")
    with pytest.raises(PresetError, match="^/a/s.toml: "):
        preset_from_dict(base, "/a/s.toml").check_latency_model({"mac_int8"}, "gpu-mlp")


OK_OPS = {"mac_int8": {"energy_pj": 1.0, "source": "s"}, "sram_byte": {"energy_pj": 1.0, "source": "s"}}


DROP = object()  # a key left out of the preset


def preset_error(data: dict, path: str = "") -> PresetError:
    table = {"name": "p", "paradigms": ["gpu"], "boundary": "core", "ops": OK_OPS, **data}
    with pytest.raises(PresetError) as e:
        preset_from_dict({k: v for k, v in table.items() if v is not DROP}, path)
    return e.value


@pytest.mark.parametrize(("data", "message", "hint"), [
    ({"name": DROP}, "preset ?: missing 'name'", 'add `name = "my-device"` at the top'),
    ({"name": ""}, "preset : missing 'name'", 'add `name = "my-device"` at the top'),
    ({"ops": {}}, "preset 'p': no [ops.<kind>] tables", "price at least one op kind"),
    ({"ops": {**OK_OPS, "mac_int8": {"source": "s"}}}, "preset 'p', [ops.mac_int8]: missing "
     "'energy_pj'", "add `energy_pj = <number>` with its source"),
    ({"ops": {**OK_OPS, "mac_int8": {"energy_pj": "1", "source": "s"}}},
     "preset 'p', [ops.mac_int8], key 'energy_pj': energy_pj = '1' is not a finite non-negative "
     "number; allowed: a number in [0, 1e+15] pJ (1 kJ per count)",
     "write energy_pj as a number >= 0, with its source"),
    ({"ops": {**OK_OPS, "mac_int8": {"energy_pj": True, "source": "s"}}},
     "preset 'p', [ops.mac_int8], key 'energy_pj': energy_pj = True is not a finite non-negative "
     "number; allowed: a number in [0, 1e+15] pJ (1 kJ per count)",
     "write energy_pj as a number >= 0, with its source"),
    ({"ops": {**OK_OPS, "mac_int8": {"energy_pj": 1.0, "hihg_pj": 2.0, "source": "s"}}},
     "preset 'p', [ops.mac_int8]: unknown key 'hihg_pj'", "did you mean 'high_pj'?"),
    ({"ops": {**OK_OPS, "mac_int8": {"energy_pj": 1.0, "source": "  "}}},
     "preset 'p', [ops.mac_int8]: no 'source'",
     'every number needs `source = "paper, table or datasheet"`'),
    ({"static": {"power_w": 1.0}}, "preset 'p', [static]: no 'source'",
     'every number needs `source = "paper, table or datasheet"`'),
    ({"paradigms": "gpu"}, "preset 'p': paradigms = 'gpu'",
     "give a non-empty list of paradigm names, e.g. ['gpu', 'spiking']"),
    ({"paradigms": []}, "preset 'p': paradigms = []",
     "give a non-empty list of paradigm names, e.g. ['gpu', 'spiking']"),
    ({"absent": {"static": "too short"}}, "preset 'p', [absent]: static = 'too short' gives no "
     "reason", "say why the device has no static cost, with its source"),
    ({"memory": {"onchip_bytes": 0, "source": "m"}}, "preset 'p', [memory]: onchip_bytes = 0.0 "
     "must be > 0", "leave it out if the preset does not model on-chip capacity"),
    ({"absent": {"memory": "held in registers only"}},
     "preset 'p': [absent] lists ['memory'], which the preset prices",
     "remove them from [absent], or remove the entries that price them"),
    ({"boundary": "chip"}, "preset 'p': boundary = 'chip' includes cost classes ['interconnect', "
     "'io', 'static'] that the preset neither prices nor declares absent", None),
    ({"memory": {"sram_tiers": [[1, 1.0]], "source": "m"}, "ops": {
        "mac_int8": {"energy_pj": 1.0, "source": "s"}, "dram_byte": {"energy_pj": 1.0, "source": "s"}}},
     "preset 'p': [memory] sram_tiers without [ops.sram_byte]",
     "price sram_byte (its nominal value) or drop sram_tiers"),
])
def test_preset_refusals_say_where_what_and_the_fix(data, message, hint):
    err = preset_error(data)
    assert err.message == message
    if hint is not None:
        assert err.hint == hint
    else:
        assert err.hint.startswith("price them ([ops.<kind>] of that class, or [static] power)")


def test_a_path_names_the_preset_in_messages():
    assert preset_error({"name": DROP}, "/x/p.toml").message == "preset /x/p.toml: missing 'name'"
    assert preset_error({"ops": {}}, "/x/p.toml").message == (
        "preset 'p' (/x/p.toml): no [ops.<kind>] tables")


@pytest.mark.parametrize("tiers", [[[1, "x"]], [1, 2], [[1, 2, 3]], [[2, 1.0], [1, 2.0]],
                                   [[1, 1.0], [1, 2.0]], [[0, 1.0]], [[1, float("inf")]],
                                   [[True, 1.0]], "tiers"])
def test_bad_sram_tiers_are_refused(tiers):
    err = preset_error({"memory": {"sram_tiers": tiers, "source": "m"}})
    assert err.message == f"preset 'p', [memory]: sram_tiers = {tiers!r}"
    assert err.hint.startswith("give [[array_bytes, energy_pj_per_byte], ...]")


def test_edge_values_that_presets_accept():
    p = preset_from_dict({"name": "p", "paradigms": ["gpu"], "boundary": "core", "ops": OK_OPS,
                          "memory": {"onchip_bytes": 1, "sram_tiers": [[1, 1.0], [2, 0.5]],
                                     "source": "m"},
                          "absent": {"static": "ten chars!"}})
    assert p.onchip_bytes == 1.0 and p.sram_tiers == ((1.0, 1.0), (2.0, 0.5))
    assert dict(p.absent) == {"static": "ten chars!"} and p.memory_source == "m"


def test_an_unknown_paradigm_names_the_known_ones_and_broken_plugins(monkeypatch):
    from nonvon import paradigms

    err = preset_error({"paradigms": ["gpu", "nope", "nah"]})
    assert err.message == "preset 'p': unknown paradigm(s) ['nope', 'nah']"
    assert err.hint == ("known paradigms: gpu, spiking, optical, hdc, quantum; list one of these, "
                        "or declare 'nope' with a Paradigm in the nonvon.paradigms entry-point "
                        "group of the plugin that brings it (docs/adding-a-device.md)")
    monkeypatch.setattr(paradigms, "broken_paradigms", lambda: [("x", "ImportError"), ("y", "E")])
    assert preset_error({"paradigms": ["nope"]}).hint.endswith(
        "(docs/adding-a-device.md); paradigm plugins that failed to load: x (ImportError); y (E)")


def test_load_preset_reads_a_file(tmp_path):
    from nonvon.energy_models import load_preset

    path = tmp_path / "p.toml"
    path.write_text('name = "f"\nparadigms = ["gpu"]\nboundary = "core"\n'
                    '[ops.mac_int8]\nenergy_pj = 1.0\nsource = "s"\n'
                    '[ops.sram_byte]\nenergy_pj = 2.0\nsource = "s"\n')
    p = load_preset(path)
    assert (p.name, p.path, p.ops["sram_byte"].value) == ("f", str(path), 2.0)
    with pytest.raises(PresetError, match=f"^preset file {tmp_path / 'none.toml'} does not exist"):
        load_preset(tmp_path / "none.toml")


# -- the catalog as documented ------------------------------------------------------------------
DOC = Path(__file__).resolve().parents[1] / "docs" / "energy-model.md"
BEGIN, END = "<!-- op-kinds: begin (tests/test_pricing_mutants.py checks it) -->", "<!-- op-kinds: end -->"


def op_kinds_table() -> str:
    """docs/energy-model.md's table of the built-in op kinds, from the catalog."""
    from nonvon.energy_models.catalog import _BUILTIN

    lines = ["| kind | unit | cost class | output_bits | what one count is |",
             "|---|---|---|---|---|"]
    for k in _BUILTIN:
        cls = f"{k.cost_class} ({k.memory_level})" if k.memory_level else k.cost_class
        lines.append(f"| `{k.name}` | {k.unit} | {cls} | {k.output_bits} | {k.description} |")
    return "\n".join(lines)


def test_the_documented_op_kind_table_is_the_catalog():
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == op_kinds_table(), (
        "docs/energy-model.md's op-kind table differs from the catalog; replace it with "
        "tests/test_pricing_mutants.py's op_kinds_table()")


# -- keys a preset file may use, and the remaining messages -----------------------------------
def test_optional_preset_keys_are_read():
    p = preset_from_dict({
        "name": "k", "description": "a device", "source": "the whole file's source",
        "paradigms": ["gpu"], "boundary": "system", "bound": True,
        "absent": {"interconnect": "one chip: no network", "io": "no host link in this bound",
                   "static": "no static power in this bound"},
        "static": {"power_w": 0.0, "source": "s", "note": "n"},
        "memory": {"onchip_bytes": 10, "source": "m", "note": "n"},
        "ops": {"mac_int8": {"energy_pj": 1.0, "source": "s", "note": "an op note"},
                "sram_byte": {"energy_pj": 1.0, "source": "s"},
                "dram_byte": {"energy_pj": 1.0, "source": "s"}}})
    assert (p.description, p.boundary, p.bound, p.ops["mac_int8"].note) == (
        "a device", "system", True, "an op note")
    assert p.to_dict() == {"name": "k", "description": "a device", "paradigms": ["gpu"],
                           "boundary": "system", "absent": dict(p.absent), "onchip_bytes": 10.0,
                           "ops": ["dram_byte", "mac_int8", "sram_byte"], "path": "",
                           "bound": True}
    plain = hand_preset()
    assert (plain.description, plain.memory_source, plain.bound) == ("", "", False)


@pytest.mark.parametrize(("kind", "message", "hint"), [
    (OpKind("mac_int8", "op", "other", 8, "compute"), "op kind 'mac_int8' is already defined "
     "differently by nonvon: " + repr(get_op_kind("mac_int8")),
     "pick another name or reuse the existing kind"),
    (OpKind("mut_u2", "joule", "x", 0, "compute"), "op kind 'mut_u2' has unknown unit 'joule'",
     "use one of op, byte, bit, event, s"),
    (OpKind("mut_c2", "op", "x", 0, "cooling"), "op kind 'mut_c2' has cost_class 'cooling'",
     "give cost_class=one of compute, memory, interconnect, io, static (DESIGN.md 2b)"),
    (OpKind("mut_m2", "byte", "x", 0, "memory"), "op kind 'mut_m2': memory_level='' with "
     "cost_class='memory'", "memory kinds name a level (register, onchip, offchip); others none"),
])
def test_op_kind_registration_messages(kind, message, hint):
    with pytest.raises(ConfigError) as e:
        register_op_kind(kind)
    assert (e.value.message, e.value.hint) == (message, hint)


@pytest.mark.parametrize(("data", "message", "hint"), [
    ({"ops": {**OK_OPS, "mac_int8": {"energy_pj": 1.0, "zzz": 1, "source": "s"}}},
     "preset 'p', [ops.mac_int8]: unknown key 'zzz'",
     "allowed keys: energy_pj, high_pj, low_pj, note, resource, source, time_s"),
    ({"bound": "yes"}, "preset 'p': bound = 'yes' is not true or false",
     "write `bound = true` for a physical bound (not a device), else leave it out"),
    ({"ops": {**OK_OPS, "mac_int9": {"energy_pj": 1.0, "source": "s"}}},
     "preset 'p', [ops.mac_int9]: unknown op kind 'mac_int9'", None),
    ({"ops": {**OK_OPS, "mac_int8": 3}}, "preset 'p', [ops.mac_int8]: expected a table",
     "write [ops.mac_int8] with energy_pj and source"),
    ({"ops": {**OK_OPS, "mac_int8": {"energy_pj": 1.0, "resource": 1, "source": "s"}}},
     "preset 'p', [ops.mac_int8]: resource must be a string", 'e.g. resource = "compute"'),
    ({"static": 3}, "preset 'p': [static] must be a table", "write [static] with power_w and source"),
    ({"boundary": "galaxy"}, "preset 'p': boundary = 'galaxy'",
     "declare what the preset models: boundary = one of ['core', 'chip', 'system'] (core: "
     "compute + on-chip memory; chip: + interconnect, on-chip io, static power; system: + "
     "off-chip memory, host io, cooling)"),
    ({"absent": 3}, "preset 'p': [absent] must be a table",
     'write [absent] with lines like static = "reason, with its source"'),
    ({"absent": {"cooling": "fans are outside the model"}},
     "preset 'p', [absent]: unknown cost class 'cooling'",
     "use one of compute, memory, interconnect, io, static"),
    ({"memory": 3}, "preset 'p': [memory] must be a table",
     "write [memory] with onchip_bytes and/or sram_tiers, and source"),
])
def test_more_preset_refusals(data, message, hint):
    err = preset_error(data)
    assert err.message == message
    if hint is not None:
        assert err.hint == hint


def test_remaining_preset_hints_in_full():
    tiers = preset_error({"memory": {"sram_tiers": [1], "source": "m"}})
    assert tiers.hint == ("give [[array_bytes, energy_pj_per_byte], ...] with positive numbers "
                          "(at most 1e+18 bytes and 1e+15 pJ), array sizes strictly ascending")
    chip = preset_error({"boundary": "chip"})
    assert chip.hint == ("price them ([ops.<kind>] of that class, or [static] power), declare "
                         "each under [absent] with a sourced reason, or claim a smaller boundary")
    p = preset_from_dict({"name": "s", "paradigms": ["gpu"], "boundary": "core",
                          "static": {"power_w": 1.0, "source": "x"}, "ops": OK_OPS})
    with pytest.raises(PresetError) as e:
        p.check_latency_model({"sram_byte", "mac_int8"}, "gpu-mlp")
    assert e.value.message == ("preset 's': [static] power_w = 1.0 W, but none of the op kinds "
                               "gpu-mlp counts (mac_int8, sram_byte) has a time_s, so no latency "
                               "exists to charge it over")
    assert e.value.hint == ("give time_s (seconds per op) to the kinds that set the device's "
                            "latency, e.g. [ops.chip_timestep] time_s = 1e-3")


def test_load_preset_file_errors(tmp_path):
    from nonvon.energy_models import load_preset

    with pytest.raises(PresetError) as e:
        load_preset(tmp_path / "none.toml")
    assert e.value.hint == "check the path, or run `nonvon list` for registered presets"
    with pytest.raises(PresetError) as e:
        load_preset(tmp_path)
    assert e.value.message == f"cannot read preset file {tmp_path}: Is a directory"
    assert e.value.hint == "give the path of a .toml file"
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(PresetError) as e:
        load_preset(bad)
    assert e.value.message.startswith(f"preset file {bad} is not valid TOML: ")
    assert e.value.hint == "fix the syntax at the position shown"
