"""``nonvon energy`` over a results folder, self-describing presets, ``nonvon list --ops``."""

from __future__ import annotations

import json
import shutil

import pytest

from nonvon import report
from nonvon.cli import run as run_cli
from nonvon.compare import compare
from nonvon.energy_models import OpLedger, load_preset, price
from nonvon.energy_models.catalog import CATALOG, unregister_op_kind
from nonvon.errors import PresetError

TINY_PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
                         "0000000a49444154789c63600000000200015c4be1a40000000049454e44ae426082")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A results folder of two real quick cells on digits (gpu-mlp, hdc-idlevel), each priced
    on one preset only, made once for the module."""
    out = tmp_path_factory.mktemp("mixed")
    with pytest.MonkeyPatch.context() as mp:  # the figures are not what this module tests
        for name in ("accuracy_vs_energy_png", "energy_breakdown_png", "latency_png"):
            mp.setattr(report, name, lambda rows: TINY_PNG)
        _compare(out)
    return out


def _compare(out):
    compare(["digits"], ["gpu-mlp", "hdc-idlevel"], quick=True, out_dir=out,
            presets=["cmos-7nm", "hdc-asic-28nm"], progress=False, log=lambda m: None,
            overrides={"gpu-mlp": {"epochs": 1}, "hdc-idlevel": {"dimensions": 512}})


@pytest.fixture
def folder(mixed, tmp_path, monkeypatch):
    """A copy of ``mixed`` to write into; figures stand in as a tiny PNG (drawn elsewhere)."""
    for name in ("accuracy_vs_energy_png", "energy_breakdown_png", "latency_png"):
        monkeypatch.setattr(report, name, lambda rows: TINY_PNG)
    dest = tmp_path / "res"
    shutil.copytree(mixed, dest)
    return dest


def _rows(folder):
    return json.loads((folder / "results.json").read_text())["rows"]


def test_energy_prices_what_it_can_lists_the_rest_and_rebuilds_the_report(folder, capsys):
    before = _rows(folder)
    assert run_cli("energy", str(folder), "--preset", "cmos-45nm", "--json") == 1
    out = json.loads(capsys.readouterr().out)
    assert [p["cell"].split(" / ")[1] for p in out["priced"]] == ["gpu-mlp"]
    (cell, why), = ((u["cell"], u["why"]) for u in out["unpriced"])
    assert "hdc-idlevel" in cell and "xor_bit" in why  # cmos-45nm has no price for HDC bits
    rows = _rows(folder)
    new = [r for r in rows if r["preset"] == "cmos-45nm"]
    assert len(rows) == len(before) + 1 and [r["simulator"] for r in new] == ["gpu-mlp"]
    gpu = next(r for r in before if r["simulator"] == "gpu-mlp")
    want = price(OpLedger.from_dict(gpu["ledger_totals"]), load_preset(
        report._registry().presets["cmos-45nm"].path))
    assert new[0]["energy_per_inference_j"] == pytest.approx(want.energy_j, rel=1e-12)
    assert new[0]["cell"] == gpu["cell"] and new[0]["accuracy"] == gpu["accuracy"]
    assert new[0]["boundary"] == "core" and new[0]["energy_breakdown_j"] == want.breakdown_j
    assert "cmos-45nm" in (folder / "report.md").read_text()
    assert "cmos-45nm" in (folder / "results.csv").read_text()
    assert "cmos-45nm" in (folder / "report.html").read_text()


def test_energy_sim_filter_and_a_second_run_replaces_rather_than_adds(folder, capsys):
    n = len(_rows(folder))
    assert run_cli("energy", str(folder), "--preset", "npu-7nm", "--sim", "hdc-idlevel") == 0
    assert run_cli("energy", str(folder), "--preset", "npu-7nm", "--sim", "hdc-idlevel") == 0
    rows = _rows(folder)
    assert len(rows) == n + 1
    assert [r["simulator"] for r in rows if r["preset"] == "npu-7nm"] == ["hdc-idlevel"]
    assert run_cli("energy", str(folder), "--preset", "npu-7nm") == 0  # both cells now
    assert sorted(r["simulator"] for r in _rows(folder) if r["preset"] == "npu-7nm") == [
        "gpu-mlp", "hdc-idlevel"]
    err = capsys.readouterr().err
    assert "priced 2 cell(s) on npu-7nm, 0 left unpriced" in err


def test_energy_with_nothing_priceable_writes_nothing_and_exits_1(folder, capsys):
    stamp = (folder / "results.json").stat().st_mtime_ns
    assert run_cli("energy", str(folder), "--preset", "loihi") == 1
    err = capsys.readouterr().err
    assert "prices the paradigms spiking, not 'gpu'" in err and "0 cell(s) on loihi" in err
    assert (folder / "results.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("args, message", [
    (["--preset", "cmos-7nm", "--sim", "snn-mlp"], "--sim snn-mlp: no cell of it"),
    (["--preset", "no-such-preset"], "unknown preset 'no-such-preset'"),
])
def test_energy_bad_input_exits_2_before_writing(folder, capsys, args, message):
    stamp = (folder / "results.json").stat().st_mtime_ns
    assert run_cli("energy", str(folder), *args) == 2
    assert message in capsys.readouterr().err
    assert (folder / "results.json").stat().st_mtime_ns == stamp


def test_energy_no_write_prints_only(folder, capsys):
    stamp = (folder / "results.json").stat().st_mtime_ns
    assert run_cli("energy", str(folder), "--preset", "npu-7nm", "--no-write") == 0
    assert "per inference on npu-7nm" in capsys.readouterr().out
    assert (folder / "results.json").stat().st_mtime_ns == stamp


# -- self-describing presets ----------------------------------------------------------------
KIND = "dendrite_plateau_test"

SELF_DESCRIBING = f"""
name = "dendritic-test"
description = "a dendritic chip whose plugin is not installed here"
paradigms = ["dendritic"]
boundary = "core"

[kinds.{KIND}]
unit = "event"
cost_class = "compute"
description = "one dendritic plateau event (test kind)"

[ops.{KIND}]
energy_pj = 2.0
source = "test value"

[ops.mac_fp32]
energy_pj = 1.0
source = "test value"

[ops.sram_byte]
energy_pj = 0.5
source = "test value"
"""


@pytest.fixture
def forget_kind():
    """The test kind is in no plugin: make sure it is not in the catalog before or after."""
    unregister_op_kind(KIND)
    yield
    unregister_op_kind(KIND)


def test_a_self_describing_preset_prices_results_of_a_plugin_not_installed(
        folder, tmp_path, capsys, forget_kind):
    rows = _rows(folder)
    shared = dict(rows[0], simulator="dendrite-sim", paradigm="dendritic", cell="dendrite-cell",
                  ledger_totals={"totals": {KIND: 720.0, "mac_fp32": 3600.0, "sram_byte": 360.0},
                                 "n_inferences": 360, "resident_bytes": 0.0})
    (folder / "results.json").write_text(json.dumps({"schema": 1, "rows": [*rows, shared]}))
    toml = tmp_path / "dendritic.toml"
    toml.write_text(SELF_DESCRIBING)
    assert KIND not in CATALOG
    assert run_cli("energy", str(folder), "--preset", str(toml), "--sim", "dendrite-sim",
                   "--json") == 0
    (got,) = json.loads(capsys.readouterr().out)["priced"]
    assert got["breakdown_j"][KIND] == pytest.approx(2 * 2.0e-12)  # 2 events x 2 pJ
    assert got["energy_j"] == pytest.approx(2 * 2e-12 + 10 * 1e-12 + 1 * 0.5e-12)
    assert CATALOG[KIND].cost_class == "compute"


@pytest.mark.parametrize("table, message", [
    ('unit = "byte"\ncost_class = "compute"\ndescription = "x"',
     "op kind 'mac_fp32' clashes with its definition by nonvon (unit 'op' vs 'byte')"),
    ('unit = "op"\ncost_class = "io"\ndescription = "x"', "cost_class 'compute' vs 'io'"),
    ('unit = "op"\ndescription = "x"', "missing 'cost_class'"),
])
def test_a_declared_kind_that_clashes_with_the_catalog_is_refused(tmp_path, table, message):
    toml = tmp_path / "clash.toml"
    toml.write_text(SELF_DESCRIBING.replace(f"[kinds.{KIND}]", "[kinds.mac_fp32]\n" + table
                                            + f"\n\n[kinds.{KIND}]"))
    with pytest.raises(PresetError, match="clash.toml") as e:
        load_preset(toml)
    assert message in e.value.message and e.value.hint
    assert KIND not in CATALOG  # a refused preset leaves nothing behind


def test_a_kind_matching_the_catalog_may_be_redeclared_and_a_bad_unit_is_refused(
        tmp_path, forget_kind):
    toml = tmp_path / "same.toml"
    toml.write_text(SELF_DESCRIBING + '\n[kinds.mac_fp32]\nunit = "op"\ncost_class = "compute"\n'
                    'description = "my words for it"\n')
    p = load_preset(toml)
    assert set(p.declared_kinds) == {KIND, "mac_fp32"}
    assert CATALOG["mac_fp32"].description.startswith("fp32 multiply-accumulate")
    unregister_op_kind(KIND)
    toml.write_text(SELF_DESCRIBING.replace('unit = "event"', 'unit = "joule"'))
    with pytest.raises(PresetError, match="unknown unit 'joule'"):
        load_preset(toml)
    assert KIND not in CATALOG


def test_an_unknown_paradigm_is_still_refused_in_a_preset_that_declares_no_kinds(tmp_path):
    toml = tmp_path / "plain.toml"
    toml.write_text(SELF_DESCRIBING.split("[kinds.")[0] + '[ops.mac_fp32]\nenergy_pj = 1.0\n'
                    'source = "test"\n[ops.sram_byte]\nenergy_pj = 1.0\nsource = "test"\n')
    with pytest.raises(PresetError, match=r"unknown paradigm\(s\) \['dendritic'\]"):
        load_preset(toml)


def test_list_ops_prints_the_catalog_with_the_presets_that_price_each(capsys):
    assert run_cli("list", "--ops", "--json") == 0
    ops = {o["name"]: o for o in json.loads(capsys.readouterr().out)["ops"]}
    assert set(ops) == set(CATALOG)
    assert ops["synop"]["unit"] == "event" and ops["synop"]["cost_class"] == "compute"
    assert "loihi" in ops["synop"]["presets"] and "gpu-h100" not in ops["synop"]["presets"]
    assert ops["sram_byte"]["memory_level"] == "onchip"
    assert ops["mac_fp32"]["defined_by"] == "nonvon"
    assert run_cli("list", "--ops") == 0
    text = capsys.readouterr().out
    assert "xor_bit" in text and "hdc-cmos-45nm" in text
