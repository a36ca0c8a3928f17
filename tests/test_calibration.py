"""studies/calibration.py: the smoke run's JSON is well formed, bad arguments exit 2, and the
committed deployments that reload in seconds still land where the committed table says."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs/results/calibration"
RECORD_FIELDS = ("key", "system", "network", "network_published", "task", "simulator", "preset",
                 "boundary", "published", "nonvon", "compared", "ratio", "within_2x", "reason")


def _study():
    spec = importlib.util.spec_from_file_location("calibration_study", ROOT / "studies/calibration.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check_record(rec: dict) -> None:
    for field in RECORD_FIELDS:
        assert field in rec, f"{rec.get('key')}: no {field!r}"
    pub, ours, cmp_ = rec["published"], rec["nonvon"], rec["compared"]
    for field in ("source", "includes"):
        assert pub.get(field) not in (None, ""), f"{rec['key']}: published {field} missing"
    # a published accuracy may be unknown (an MVM efficiency without its network's accuracy)
    assert pub.get("accuracy") is not None or rec.get("accuracy_matched") is None, rec["key"]
    assert 0 <= ours["accuracy"] <= 1
    assert set(ours["energy_by_class_j"]) == {"compute", "memory", "interconnect", "io", "static"}
    for v in [ours["energy_j"], ours["low_j"], ours["high_j"], *ours["energy_by_class_j"].values()]:
        assert math.isfinite(v) and v >= 0
    assert ours["low_j"] <= ours["energy_j"] * (1 + 1e-9) <= ours["high_j"] * (1 + 1e-9)
    assert math.isclose(sum(ours["energy_by_class_j"].values()), ours["energy_j"], rel_tol=1e-9)
    if rec["ratio"] is None:
        assert rec["reason"], f"{rec['key']}: no ratio and no reason"
    else:
        assert math.isclose(rec["ratio"], cmp_["modelled"] / cmp_["measured"], rel_tol=1e-12)
        assert rec["within_2x"] == (0.5 <= rec["ratio"] <= 2.0)
        if not rec["within_2x"]:
            assert rec["reason"], f"{rec['key']}: ratio {rec['ratio']:.2f} without a stated reason"


def test_smoke_run_writes_well_formed_json(tmp_path):
    mod = _study()
    out = tmp_path / "cal"
    rc = mod.main(["--quick", "--only", "truenorth-esser2015,gpu-h100-nvml", "--limit", "100",
                   "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "calibration.json").read_text())  # strict JSON: no NaN/inf
    assert [r["key"] for r in doc["records"]] == ["truenorth-esser2015", "gpu-h100-nvml"]
    for rec in doc["records"]:
        _check_record(rec)
    assert doc["not_rebuilt"] and doc["not_rebuilt"][0]["reason"]
    assert (out / "calibration.png").stat().st_size > 0
    # the trained state is cached with its settings and reused by a rerun
    meta = json.loads((out / "cache/truenorth-esser2015.json").read_text())
    assert meta["payload"]["simulator"] == "truenorth"
    before = (out / "cache/truenorth-esser2015.safetensors").read_bytes()
    mod.main(["--quick", "--only", "truenorth-esser2015", "--limit", "100", "--out", str(out)])
    again = json.loads((out / "calibration.json").read_text())["records"][0]
    assert again["cache"]["loaded"] is True
    assert (out / "cache/truenorth-esser2015.safetensors").read_bytes() == before


@pytest.mark.parametrize("argv", [["--only", "no-such-chip"], ["--epochs", "0"], ["--limit", "-3"]])
def test_bad_arguments_exit_2(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        _study().main([*argv, "--out", str(tmp_path)])
    assert err.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_committed_table_is_well_formed():
    doc = json.loads((COMMITTED / "calibration.json").read_text())
    assert not doc["quick"]
    keys = {r["key"] for r in doc["records"]}
    assert len(keys) >= 6 and "gpu-h100-nvml" in keys
    for rec in doc["records"]:
        _check_record(rec)


def test_gpu_repriced_from_the_committed_cell_lands_within_2x():
    """The H100 row needs no data: the committed cell's counts priced on gpu-h100 now."""
    import nonvon

    rec = _study().run_gpu(nonvon.registry(), None)
    committed = next(r for r in json.loads((COMMITTED / "calibration.json").read_text())["records"]
                     if r["key"] == "gpu-h100-nvml")
    assert math.isclose(rec["ratio"], committed["ratio"], rel_tol=1e-9)
    assert 0.5 <= rec["ratio"] <= 2.0


def _mnist_available() -> bool:
    root = os.environ.get("NONVON_DATA")
    return bool(root) and (Path(root) / "mnist/t10k-images-idx3-ubyte.gz").exists()


@pytest.mark.skipif(not _mnist_available(), reason="needs MNIST under $NONVON_DATA")
def test_committed_parameters_reload_and_land_where_stated():
    """Every deployment whose parameters are committed (and evaluates in seconds) reloads, counts
    on a test subset within 15% of the committed modelled figure, and its committed ratio is
    within 2x or carries its reason."""
    import nonvon

    mod = _study()
    reg = nonvon.registry()
    doc = json.loads((COMMITTED / "calibration.json").read_text())
    checked = 0
    for rec in doc["records"]:
        spec = next((d for d in mod.CHIPS if d["key"] == rec["key"]), None)
        st = COMMITTED / "cache" / (rec.get("cache") or {}).get("file", "-")
        if spec is None or not st.exists() or rec["simulator"] == "brainscales2-ttfs":
            continue  # not committed, or slow to evaluate on the CPU (its own test file covers it)
        task = mod.make_task(reg, spec["task"], spec["side"], False)
        sim = reg.simulator(rec["simulator"], **rec["config"], device="cpu")
        sim.load_state_tensors(mod.decode_tensors(st.read_bytes()), task)
        e = sim.evaluate(task, limit=1000).priced(reg.preset(rec["preset"])).energy
        modelled, _ = mod.compared_energy(spec, e, sim)
        assert math.isclose(modelled, rec["compared"]["modelled"], rel_tol=0.15), rec["key"]
        assert 0.5 <= rec["ratio"] <= 2.0 or rec["reason"], rec["key"]
        checked += 1
    assert checked >= 1
