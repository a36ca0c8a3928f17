"""The built-in presets: they load, every number is sourced, the numbers are the
published ones, and pricing is linear, non-negative and a roofline on gpu-h100."""

from __future__ import annotations

import functools
import math
import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nonvon.energy_models import CATALOG, OpLedger, landauer_j, load_preset, preset_from_dict, price
from nonvon.energy_models.presets import PRESET_DIR
from nonvon.errors import IncompatibleError, PresetError

PRESET_FILES = sorted(PRESET_DIR.glob("*.toml"))
BUILTIN = ("cmos-45nm", "cmos-7nm", "gpu-h100")
DTYPES = ("int8", "int32", "fp16", "bf16", "fp32")

# H100 SXM datasheet figures (checked against the preset, not read from it)
H100_TDP_W = 700.0
H100_FP32_FLOPS = 67e12
H100_TENSOR_DENSE_FLOPS = 989.4e12
H100_HBM_BPS = 3.35e12


@functools.cache
def preset(name: str):
    return load_preset(PRESET_DIR / f"{name}.toml")


def approx(x, rel=1e-3):
    return pytest.approx(x, rel=rel)


# -- every built-in file ---------------------------------------------------------


def test_the_three_builtins_ship():
    assert {f.stem for f in PRESET_FILES} >= set(BUILTIN)


def test_builtins_are_registered_by_entry_point():
    eps = [ep for ep in entry_points(group="nonvon.presets")
           if ep.value == "nonvon.energy_models.presets:PRESET_DIR"]
    assert eps, "pyproject must register the built-in preset folder"
    assert Path(eps[0].load()) == PRESET_DIR


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.stem)
def test_preset_file_is_valid_and_sourced(path):
    p = load_preset(path)
    assert p.name == path.stem, "file name and preset name must agree"
    assert p.description.strip()
    assert p.paradigms
    assert p.ops
    for kind, op in p.ops.items():
        assert kind in CATALOG
        assert op.source.strip(), f"{kind} has no source"
        assert 0 <= op.low <= op.value <= op.high, f"{kind} bounds out of order"
        assert all(math.isfinite(x) for x in (op.low, op.value, op.high))
        if op.time_s is not None:
            assert op.time_s >= 0 and op.resource.strip()
    assert 0 <= p.static_low_w <= p.static_power_w <= p.static_high_w
    if p.static_high_w > 0:
        assert p.static_source.strip()
    if p.sram_tiers or p.onchip_bytes is not None:
        assert p.memory_source.strip(), "[memory] numbers without a source"
    for cls, reason in p.absent.items():
        assert len(reason.strip()) > 20, f"absent {cls} without a real reason"


@pytest.mark.parametrize("name", ["cmos-45nm", "cmos-7nm"])
def test_cmos_mac_is_mul_plus_add_and_cmp_is_add(name):
    p = preset(name)
    for dt in DTYPES:
        if f"mac_{dt}" not in p.ops:
            continue
        assert p.ops[f"mac_{dt}"].value == approx(p.ops[f"mul_{dt}"].value + p.ops[f"add_{dt}"].value,
                                                  rel=1e-9)
        assert p.ops[f"cmp_{dt}"].value == p.ops[f"add_{dt}"].value
    # a custom ASIC price list: launches explicitly free (hard-wired), no unsourced static power
    assert p.ops["kernel_launch"].value == 0.0 and "assumption" in p.ops["kernel_launch"].source
    assert p.static_power_w == 0.0
    assert set(p.paradigms) == {"gpu", "hdc", "spiking"}


# -- spot checks: the published numbers --------------------------------------------


def test_cmos_45nm_numbers_are_horowitz():
    ops = preset("cmos-45nm").ops
    assert ops["mac_fp32"].value == approx(3.7 + 0.9)
    assert ops["mul_fp32"].value == approx(3.7)
    assert ops["add_fp32"].value == approx(0.9)
    assert ops["mac_fp16"].value == approx(1.1 + 0.4)
    assert ops["mac_int32"].value == approx(3.1 + 0.1)
    assert ops["mac_int8"].value == approx(0.2 + 0.03)
    assert ops["add_int8"].value == approx(0.03)
    assert ops["sram_byte"].low == ops["sram_byte"].value == ops["sram_byte"].high == approx(20 / 8)
    assert preset("cmos-45nm").sram_tiers == (
        (8192, approx(10 / 8)), (32768, approx(20 / 8)), (1048576, approx(100 / 8)))
    assert (ops["dram_byte"].low, ops["dram_byte"].high) == (approx(1300 / 8), approx(2600 / 8))
    assert not [k for k in ops if k.endswith("_bf16")], "Horowitz's table has no bf16"


def test_cmos_7nm_numbers_are_jouppi_table2():
    ops = preset("cmos-7nm").ops
    assert ops["mul_fp32"].value == approx(1.31)
    assert ops["mac_fp32"].value == approx(1.31 + 0.38)
    assert ops["mac_bf16"].value == approx(0.21 + 0.11)
    assert ops["mac_fp16"].value == approx(0.34 + 0.16)
    assert ops["mac_int8"].value == approx(0.07 + 0.007)
    assert ops["mac_int32"].value == approx(1.48 + 0.03)
    assert ops["sram_byte"].low == ops["sram_byte"].value == ops["sram_byte"].high == approx(8.5 / 8)
    assert preset("cmos-7nm").sram_tiers == (
        (8192, approx(7.5 / 8)), (32768, approx(8.5 / 8)), (1048576, approx(14 / 8)))
    assert (ops["dram_byte"].low, ops["dram_byte"].high) == (approx(250 / 8), approx(450 / 8))
    # 7 nm is cheaper than 45 nm for every arithmetic kind both price
    old = preset("cmos-45nm").ops
    for kind in set(ops) & set(old):
        if CATALOG[kind].cost_class in ("compute", "memory"):  # io is outside the core: 0 in both
            assert ops[kind].value < old[kind].value, kind


def test_gpu_h100_derivation_from_datasheet():
    p = preset("gpu-h100")
    assert p.paradigms == ("gpu",)
    dyn_w = H100_TDP_W - p.static_power_w
    mac = p.ops["mac_fp32"]
    assert mac.value == approx(2 * dyn_w / H100_FP32_FLOPS * 1e12)
    assert mac.high == approx(2 * H100_TDP_W / H100_FP32_FLOPS * 1e12)
    assert mac.time_s == approx(2 / H100_FP32_FLOPS)
    assert mac.low == approx(preset("cmos-7nm").ops["mac_fp32"].value)
    for dt in ("bf16", "fp16"):
        tc = p.ops[f"mac_{dt}"]
        assert tc.value == approx(2 * dyn_w / H100_TENSOR_DENSE_FLOPS * 1e12)
        assert tc.high == approx(2 * H100_TDP_W / H100_TENSOR_DENSE_FLOPS * 1e12)
        assert tc.time_s == approx(2 / H100_TENSOR_DENSE_FLOPS)
    for kind in ("add", "mul", "cmp"):
        for dt in ("fp32", "bf16", "fp16"):
            op = p.ops[f"{kind}_{dt}"]
            assert op.value == approx(mac.value) and op.time_s == approx(mac.time_s)
    dram = p.ops["dram_byte"]
    assert dram.value == approx(3.97 * 8)
    assert dram.time_s == approx(1 / H100_HBM_BPS)
    assert dram.resource == "memory"
    # on-chip accesses stream through HBM in this roofline (calibrated against NVML)
    assert p.ops["sram_byte"].value == dram.value and p.ops["sram_byte"].resource == "memory"
    assert p.ops["host_transfer_byte"].resource == "host_link"
    assert {p.ops[k].resource for k in p.ops if k not in (
        "dram_byte", "sram_byte", "kernel_launch", "host_transfer_byte")} == {"compute"}
    launch = p.ops["kernel_launch"]
    assert launch.value == 0.0 and launch.resource == "serial"
    assert 2e-6 <= launch.time_s <= 2e-5  # measured 11.1 us (PyTorch eager, studies/gpu_calibration.py)
    assert "static" in launch.note
    assert 0 < p.static_power_w < H100_TDP_W


# -- pricing on the presets ---------------------------------------------------------


@pytest.mark.parametrize("macs,nbytes,launches", [
    (10**9, 10**6, 3),     # compute-bound
    (10**6, 10**9, 5),     # memory-bound
    (0, 0, 2),             # launches only
    (10**7, 0, 0),         # compute only
])
def test_gpu_h100_latency_is_roofline_plus_launches(macs, nbytes, launches):
    p = preset("gpu-h100")
    n = 4
    ledger = OpLedger({"mac_fp32": macs * n, "dram_byte": nbytes * n,
                       "kernel_launch": launches * n}, n)
    r = price(ledger, p)
    compute_s = macs * 2 / H100_FP32_FLOPS
    memory_s = nbytes / H100_HBM_BPS
    expected = max(compute_s, memory_s) + launches * p.ops["kernel_launch"].time_s
    assert r.latency_s == approx(expected, rel=1e-4)
    assert r.breakdown_j["static"] == approx(p.static_power_w * r.latency_s, rel=1e-9)
    # a compute-bound run at peak is charged TDP (dynamic share + static share)
    if macs and not nbytes and not launches:
        assert r.energy_j / r.latency_s == approx(H100_TDP_W, rel=1e-3)


def test_tensor_and_cuda_core_macs_share_the_compute_resource():
    p = preset("gpu-h100")
    r = price(OpLedger({"mac_fp32": 10**6, "mac_bf16": 10**6}, 1), p)
    assert r.latency_s == approx(10**6 * (2 / H100_FP32_FLOPS + 2 / H100_TENSOR_DENSE_FLOPS))


def test_cmos_presets_have_no_latency_or_static_energy():
    r = price(OpLedger({"mac_fp32": 1000, "dram_byte": 100}, 1), preset("cmos-45nm"))
    assert r.latency_s is None and "static" not in r.breakdown_j
    assert r.energy_j == approx((1000 * 4.6 + 100 * 243.75) * 1e-12, rel=1e-9)


def test_unpriced_kind_raises_rather_than_zero():
    with pytest.raises(IncompatibleError, match="mac_bf16"):
        price(OpLedger({"mac_bf16": 10}, 1), preset("cmos-45nm"))
    with pytest.raises(IncompatibleError, match="xor_bit"):
        price(OpLedger({"xor_bit": 10}, 1), preset("gpu-h100"))


# -- malformed presets --------------------------------------------------------------

GOOD = """
name = "tiny"
paradigms = ["hdc"]
boundary = "core"
[absent]
memory = "a register-only toy datapath: operands arrive in registers"
[ops.add_int8]
energy_pj = 0.03
source = "Horowitz, ISSCC 2014"
"""


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "p.toml"
    f.write_text(text, encoding="utf-8")
    return f


def test_minimal_good_preset_loads(tmp_path):
    p = load_preset(_write(tmp_path, GOOD))
    assert p.name == "tiny" and p.ops["add_int8"].low == p.ops["add_int8"].high == 0.03
    assert p.ops["add_int8"].resource == "serial" and p.ops["add_int8"].time_s is None


@pytest.mark.parametrize("text,match", [
    (GOOD.replace('source = "Horowitz, ISSCC 2014"', ""), "source"),
    (GOOD.replace('source = "Horowitz, ISSCC 2014"', 'source = "  "'), "source"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = -0.03"), "non-negative"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = 0.03\nlow_pj = -1.0"), "non-negative"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = 0.03\ntime_s = -1e-9"), "non-negative"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = nan"), "non-negative"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = true"), "non-negative"),
    (GOOD.replace("energy_pj = 0.03", 'energy_pj = "0.03"'), "non-negative"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = 0.03\nlow_pj = 0.05"), "bounds"),
    (GOOD.replace("energy_pj = 0.03", "energy_pj = 0.03\nhigh_pj = 0.01"), "bounds"),
    (GOOD.replace("energy_pj = 0.03", ""), "energy_pj"),
    (GOOD.replace("[ops.add_int8]", "[ops.add_int7]"), "unknown op kind"),
    (GOOD.replace('paradigms = ["hdc"]', 'paradigms = ["fpga"]'), "unknown paradigm"),
    (GOOD.replace('paradigms = ["hdc"]', "paradigms = [3]"), "paradigms"),
    (GOOD.replace('boundary = "core"', 'boundary = "core"\nbound = 1'), "not true or false"),
    (GOOD.replace('paradigms = ["hdc"]', "paradigms = []"), "paradigms"),
    (GOOD.replace('name = "tiny"', ""), "name"),
    (GOOD + '[static]\npower_w = 5.0\n', "static"),
    (GOOD + '[static]\npower_w = -5.0\nsource = "x"\n', "non-negative"),
    ('name = "tiny"\nparadigms = ["hdc"]\n', "ops"),
    (GOOD + "this is = not [toml", "not valid TOML"),
])
def test_malformed_preset_raises_preset_error(tmp_path, text, match):
    with pytest.raises(PresetError, match=match):
        load_preset(_write(tmp_path, text))


def test_an_undeclared_paradigm_error_names_the_file_the_paradigm_the_known_ones_and_the_fix(tmp_path):
    from nonvon.paradigms import paradigm_names

    path = _write(tmp_path, GOOD.replace('paradigms = ["hdc"]', 'paradigms = ["hdc", "fpga"]'))
    with pytest.raises(PresetError) as err:
        load_preset(path)
    text = str(err.value)
    assert str(path) in text and "['fpga']" in text and "nonvon.paradigms" in text
    assert all(p in text for p in paradigm_names())


def test_bounds_are_marked_by_a_field_not_by_a_name(tmp_path):
    assert [f.stem for f in PRESET_FILES if load_preset(f).bound] == ["photonic-limit"]
    named = load_preset(_write(tmp_path, GOOD.replace('name = "tiny"', 'name = "tiny-limit"')))
    assert not named.bound, "a -limit suffix alone does not make a bound"
    marked = GOOD.replace('boundary = "core"', 'boundary = "core"\nbound = true')
    assert load_preset(_write(tmp_path, marked)).bound


def test_the_documented_example_preset_is_valid():
    doc = (Path(__file__).parents[1] / "docs" / "energy-model.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(name = .*?)```", doc, re.S)
    assert block, "docs/energy-model.md lost its complete example preset"
    p = preset_from_dict(tomllib.loads(block.group(1)))
    r = price(OpLedger({"mac_int8": 10**6, "dram_byte": 10**5, "kernel_launch": 1}, 1), p)
    assert r.latency_s == approx(max(10**6 * 1e-12, 10**5 * 2.5e-12) + 2e-6)


def test_missing_preset_file_raises_preset_error(tmp_path):
    with pytest.raises(PresetError, match="does not exist"):
        load_preset(tmp_path / "absent.toml")


# -- properties: pricing is linear and non-negative ---------------------------------


def _ledgers(preset_name: str, max_count: int = 10**9):
    kinds = sorted(k for k in preset(preset_name).ops if CATALOG[k].unit != "s")
    return st.builds(
        OpLedger,
        st.dictionaries(st.sampled_from(kinds), st.integers(0, max_count), max_size=len(kinds)),
        st.integers(1, 1000),
    )


def _dynamic_j(report) -> float:
    return sum(v for k, v in report.breakdown_j.items() if k != "static")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-30)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(BUILTIN), data=st.data(), k=st.integers(1, 1000))
def test_price_is_homogeneous_and_non_negative(name, data, k):
    p = preset(name)
    ledger = data.draw(_ledgers(name))
    r, rk = price(ledger, p), price(ledger.scaled(k), p)
    for rep in (r, rk):
        assert rep.energy_j >= 0 and (rep.latency_s is None or rep.latency_s >= 0)
        assert all(v >= 0 for v in rep.breakdown_j.values())
        assert rep.low_j <= rep.energy_j * (1 + 1e-12) and rep.energy_j <= rep.high_j * (1 + 1e-12)
        assert rep.low_j >= landauer_j(ledger.scaled(k) if rep is rk else ledger) * (1 - 1e-12)
    assert _close(_dynamic_j(rk), k * _dynamic_j(r))
    # latency is a max of sums plus a sum: also homogeneous, so static energy scales too
    if r.latency_s is None:  # a price list without timing (the cmos presets)
        assert rk.latency_s is None and not p.static_power_w
    else:
        assert _close(rk.latency_s, k * r.latency_s)
    assert _close(rk.energy_j, k * r.energy_j)
    assert _close(rk.low_j, k * r.low_j) and _close(rk.high_j, k * r.high_j)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(BUILTIN), data=st.data())
def test_price_is_additive_over_ledgers(name, data):
    p = preset(name)
    a, b = data.draw(_ledgers(name)), data.draw(_ledgers(name))
    ra, rb, rab = price(a, p), price(b, p), price(a + b, p)
    na, nb = a.n_inferences, b.n_inferences
    # totals over all inferences: per-inference figures times the number of inferences
    total = (na + nb) * _dynamic_j(rab)
    assert _close(total, na * _dynamic_j(ra) + nb * _dynamic_j(rb))
    for kind in rab.breakdown_j.keys() - {"static"}:
        assert _close((na + nb) * rab.breakdown_j[kind],
                      na * ra.breakdown_j.get(kind, 0.0) + nb * rb.breakdown_j.get(kind, 0.0))
    if p.static_power_w == 0 and p.static_high_w == 0:
        assert _close((na + nb) * rab.energy_j, na * ra.energy_j + nb * rb.energy_j)
        assert _close((na + nb) * rab.low_j, na * ra.low_j + nb * rb.low_j)
        assert _close((na + nb) * rab.high_j, na * ra.high_j + nb * rb.high_j)


# -- boundaries, cost classes and memory placement (DESIGN.md 2b) --------------------

CHIP = """
name = "chip"
paradigms = ["gpu"]
boundary = "chip"
[absent]
interconnect = "one datapath: nothing moves between units (test fixture)"
[memory]
onchip_bytes = 1000
sram_tiers = [[100, 1.0], [1000, 2.0]]
source = "test fixture"
[static]
power_w = 1.0
source = "test fixture"
[ops.mac_int8]
energy_pj = 0.1
time_s = 1e-9
source = "test fixture"
[ops.sram_byte]
energy_pj = 1.5
source = "test fixture"
[ops.dram_byte]
energy_pj = 40.0
source = "test fixture"
[ops.host_transfer_byte]
energy_pj = 10.0
source = "test fixture"
"""


@pytest.mark.parametrize("text,match", [
    (GOOD.replace('boundary = "core"\n', ""), "boundary"),
    (GOOD.replace('boundary = "core"', 'boundary = "board"'), "boundary"),
    (GOOD.replace('memory = "a register-only', 'memri = "a register-only'), "unknown cost class"),
    (GOOD.replace('"a register-only toy datapath: operands arrive in registers"', '"none"'),
     "no reason"),
    (GOOD.replace("[absent]\nmemory", "[absent]\ncompute = \"it prices add_int8 though\"\nmemory"),
     "which the preset prices"),
    (CHIP.replace('[static]\npower_w = 1.0\nsource = "test fixture"\n', ""), r"\['static'\]"),
    (CHIP.replace("[ops.host_transfer_byte]", "[ops.mac_fp32]"), r"\['io'\]"),
    (CHIP.replace("sram_tiers = [[100, 1.0], [1000, 2.0]]", "sram_tiers = [[1000, 1.0], [100, 2.0]]"),
     "ascending"),
    (CHIP.replace("onchip_bytes = 1000", "onchip_bytes = 0"), "> 0"),
])
def test_a_preset_cannot_claim_a_boundary_it_does_not_price(tmp_path, text, match):
    with pytest.raises(PresetError, match=match) as err:
        load_preset(_write(tmp_path, text))
    assert "p.toml" in err.value.message  # the error names the file


def test_every_builtin_preset_prices_or_explains_every_class_of_its_boundary():
    from nonvon.energy_models.catalog import COST_CLASSES
    from nonvon.energy_models.preset import classes_within

    for f in PRESET_FILES:
        p = load_preset(f)
        for cls in classes_within(p.boundary):
            assert cls in p.priced_classes or cls in p.absent, (p.name, cls)
        for cls, reason in p.absent.items():
            assert cls in COST_CLASSES and "INTERIM" not in reason, (p.name, cls, reason)


def test_energy_by_class_sums_to_the_total_and_names_the_boundary(tmp_path):
    p = load_preset(_write(tmp_path, CHIP))
    r = price(OpLedger({"mac_int8": 1000, "sram_byte": 500, "host_transfer_byte": 10}, 10,
                       resident_bytes=50), p)
    assert r.boundary == "chip" and set(r.energy_by_class_j) == {
        "compute", "memory", "interconnect", "io", "static"}
    assert math.fsum(r.energy_by_class_j.values()) == approx(r.energy_j, rel=1e-12)
    assert r.energy_by_class_j["io"] == approx(1 * 10e-12)
    assert r.energy_by_class_j["static"] == approx(1.0 * 100 * 1e-9)  # 1 W over 100 MACs x 1 ns
    assert r.energy_by_class_j["interconnect"] == 0.0


@pytest.mark.parametrize("resident,sram_pj,spilled", [
    (50, 1.0, 0.0),      # fits the 100-byte array
    (500, 2.0, 0.0),     # needs the 1000-byte array
    (4000, 2.0, 0.75),   # 1000 of 4000 bytes on chip: 3/4 of the accesses go to DRAM
])
def test_memory_is_placed_by_capacity_and_priced_by_array_size(tmp_path, resident, sram_pj, spilled):
    p = load_preset(_write(tmp_path, CHIP))
    r = price(OpLedger({"sram_byte": 800, "mac_int8": 1}, 1, resident_bytes=resident), p)
    assert r.placement["spilled_fraction"] == approx(spilled)
    want = 800 * (1 - spilled) * sram_pj + 800 * spilled * 40.0
    assert r.energy_by_class_j["memory"] == approx(want * 1e-12)
    if spilled:
        assert any("spilled" in a for a in r.assumptions)


def test_a_network_that_cannot_spill_is_refused_with_the_fix(tmp_path):
    no_dram = CHIP.replace('[ops.dram_byte]\nenergy_pj = 40.0\nsource = "test fixture"\n', "")
    p = load_preset(_write(tmp_path, no_dram))
    with pytest.raises(IncompatibleError, match="4,000 bytes.*1,000 bytes on chip") as err:
        price(OpLedger({"sram_byte": 10}, 1, resident_bytes=4000), p)
    assert "smaller network" in err.value.hint


def test_an_op_kind_needs_a_cost_class():
    from nonvon.energy_models import OpKind, register_op_kind
    from nonvon.errors import ConfigError

    with pytest.raises(ConfigError, match="cost_class"):
        register_op_kind(OpKind("classless_test_op", "op", "no class"))
    with pytest.raises(ConfigError, match="memory_level"):
        register_op_kind(OpKind("levelless_test_op", "byte", "memory, no level", 8, "memory"))


def test_every_onchip_memory_kind_spills_bits_as_bytes(tmp_path):
    text = CHIP.replace("[ops.sram_byte]",
                        '[ops.hv_read_bit]\nenergy_pj = 0.1\nsource = "test fixture"\n\n[ops.sram_byte]')
    p = load_preset(_write(tmp_path, text))
    r = price(OpLedger({"hv_read_bit": 800, "mac_int8": 1}, 1, resident_bytes=4000), p)
    # 3/4 of 800 bits = 600 bits = 75 bytes read off chip
    assert r.breakdown_j["dram_byte"] == approx(75 * 40.0e-12)
    assert r.breakdown_j["hv_read_bit"] == approx(200 * 0.1e-12)
