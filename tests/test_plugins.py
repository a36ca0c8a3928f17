"""Plugins from outside: a broken one is reported while the rest work; the worked example runs.

Third-party plugins are simulated with a fake installed distribution: a folder on
PYTHONPATH holding ``<name>-0.1.dist-info/`` (METADATA and entry_points.txt) next to
the plugin's module, which is all ``importlib.metadata`` needs to find its entry points.
The CLI runs in a subprocess so that discovery sees exactly that path.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nonvon import ConfigError, Simulator, load_preset, price
from nonvon.energy_models.catalog import CATALOG
from nonvon.energy_models.presets import PRESET_DIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
TOY_PRESET = EXAMPLES / "toy-npu.toml"
BUILTIN_PRESETS = sorted(load_preset(f).name for f in PRESET_DIR.glob("*.toml"))
IMPORT_ERROR = "nonvon_broken_plugin needs libwarp, which is not installed"


def fake_distribution(site: Path, name: str, entry_points: dict[str, dict[str, str]]) -> None:
    """Make ``site`` look like a site-packages folder holding distribution ``name``."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
                   for group, eps in entry_points.items())
    (info / "entry_points.txt").write_text(text)


def run_nonvon(*args: str, path: list[Path]) -> subprocess.CompletedProcess:
    """``python -m nonvon.cli ARGS`` with ``path`` in front of PYTHONPATH."""
    pythonpath = [str(p) for p in path] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    return subprocess.run([sys.executable, "-m", "nonvon.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def list_json(path: list[Path]) -> dict:
    proc = run_nonvon("list", "--json", path=path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- a broken simulator and a broken preset entry point -------------------------------
@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("broken-site")
    fake_distribution(site, "brokenplugin", {
        "nonvon.simulators": {"broken-sim": "nonvon_broken_plugin:Missing"},
        "nonvon.presets": {"broken-presets": "nonvon_broken_presets:BAD_TOML"},
    })
    (site / "nonvon_broken_plugin.py").write_text(f"raise ImportError({IMPORT_ERROR!r})\n")
    (site / "bad.toml").write_text('name = "bad"\n[ops.mac_int8\nenergy_pj = 1.0\n')
    (site / "nonvon_broken_presets.py").write_text(
        "from pathlib import Path\n\nBAD_TOML = Path(__file__).with_name('bad.toml')\n")
    return site


@pytest.fixture(scope="module")
def broken_listing(broken_site) -> dict:
    return list_json([broken_site])


def test_broken_simulator_is_reported_and_the_rest_work(broken_listing):
    broken = {b["name"]: b for b in broken_listing["broken"]}
    assert broken["broken-sim"]["group"] == "nonvon.simulators"
    assert broken["broken-sim"]["error"] == f"ImportError: {IMPORT_ERROR}"
    sims = {s["name"]: s for s in broken_listing["simulators"]}
    assert {"gpu-mlp", "gpu-cnn"} <= set(sims) and "broken-sim" not in sims
    from nonvon.paradigms import paradigm_names

    assert all(s["paradigm"] in paradigm_names() and s["op_kinds"] for s in sims.values())
    assert {"digits", "mnist", "mnist-5k", "fashion-mnist"} <= set(broken_listing["tasks"])


def test_broken_preset_entry_point_is_reported_and_builtins_still_load(broken_listing):
    broken = {b["name"]: b for b in broken_listing["broken"]}
    assert broken["broken-presets"]["group"] == "nonvon.presets"
    assert "PresetError" in broken["broken-presets"]["error"]
    assert "bad.toml is not valid TOML" in broken["broken-presets"]["error"]
    # every built-in loads; presets of plugins installed here may come beside them
    assert BUILTIN_PRESETS and set(BUILTIN_PRESETS) <= {p["name"] for p in broken_listing["presets"]}


def test_human_readable_list_shows_broken_plugins(broken_site):
    proc = run_nonvon("list", path=[broken_site])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "broken plugins" in out and "broken-sim" in out and "ImportError" in out
    assert "broken-presets" in out and "PresetError" in out
    assert "gpu-mlp" in out and "gpu-cnn" in out and all(p in out for p in BUILTIN_PRESETS)


def test_compare_with_a_broken_simulator_says_the_plugin_failed_to_load(broken_site, tmp_path):
    out = tmp_path / "res"
    proc = run_nonvon("compare", "--task", "digits", "--sim", "broken-sim", "--no-progress",
                      "--out", str(out), path=[broken_site])
    assert proc.returncode == 2
    assert "unknown simulator 'broken-sim'" in proc.stderr
    assert "failed to load" in proc.stderr and IMPORT_ERROR in proc.stderr
    assert not out.exists(), "a failed compare must write nothing"


# -- the worked example of docs/adding-a-device.md and a third-party preset -------------
@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("example-site")
    fake_distribution(site, "toy_npu", {
        "nonvon.simulators": {"toy-npu": "toy_npu:ToyNPU"},
        "nonvon.presets": {"toy-npu": "toy_npu:PRESET_FILE"},
    })
    # A preset-only package whose entry point object is a plain str path to a TOML file.
    (site / "edge-asic.toml").write_text(
        TOY_PRESET.read_text().replace('name = "toy-npu"', 'name = "edge-asic-3rdparty"'))
    (site / "nonvon_thirdparty_presets.py").write_text(
        "from pathlib import Path\n\nEDGE_ASIC = str(Path(__file__).with_name('edge-asic.toml'))\n")
    fake_distribution(site, "thirdparty_presets",
                      {"nonvon.presets": {"edge-asic": "nonvon_thirdparty_presets:EDGE_ASIC"}})
    return site


def test_example_plugin_and_third_party_presets_are_listed(example_site):
    info = list_json([example_site, EXAMPLES])
    assert info["broken"] == []
    sims = {s["name"]: s for s in info["simulators"]}
    assert sims["toy-npu"]["paradigm"] == "gpu"
    assert sims["toy-npu"]["op_kinds"] == ["add_int32", "cmp_int32", "host_transfer_byte",
                                           "mac_int8", "sram_byte"]
    presets = {p["name"]: p for p in info["presets"]}
    assert set(BUILTIN_PRESETS) | {"toy-npu", "edge-asic-3rdparty"} <= set(presets)
    assert Path(presets["toy-npu"]["path"]) == TOY_PRESET
    assert Path(presets["edge-asic-3rdparty"]["path"]) == example_site / "edge-asic.toml"
    assert presets["edge-asic-3rdparty"]["paradigms"] == ["gpu"]


def test_example_plugin_runs_in_compare(example_site, tmp_path):
    out = tmp_path / "res"
    proc = run_nonvon("compare", "--task", "digits", "--sim", "toy-npu", "--preset", str(TOY_PRESET),
                      "--no-progress", "--out", str(out), path=[example_site, EXAMPLES])
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["simulator"], row["preset"], row["kind"], row["paradigm"]) == (
        "toy-npu", "toy-npu", "modelled", "gpu")
    assert row["accuracy"] > 0.7, "nearest centroid on digits is far above chance (0.1)"
    assert 0 < row["energy_low_j"] <= row["energy_per_inference_j"] <= row["energy_high_j"]
    assert row["latency_per_inference_s"] > 0
    assert set(row["ledger"]) == {"add_int32", "cmp_int32", "host_transfer_byte", "mac_int8",
                                  "sram_byte"}
    assert row["boundary"] == "core" and row["precision"] == "int8"
    assert (out / "results.csv").exists() and (out / "report.md").exists()


def test_conformance_suite_covers_the_example_without_edits(example_site):
    """The registry-parametrized suite picks up an installed plugin by itself."""
    pythonpath = [str(example_site), str(EXAMPLES)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_conformance.py"), "-q",
         "-k", "toy-npu", "-p", "no:cacheprovider"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}, cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    # Exit code 5 would mean nothing matched toy-npu: the plugin was not discovered.
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# -- the same checks in-process, on the module itself -----------------------------------
@pytest.fixture
def toy_npu(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("toy_npu")


def test_example_meets_the_contract(toy_npu, digits_task):
    cls = toy_npu.ToyNPU
    assert issubclass(cls, Simulator) and cls.paradigm == "gpu"
    assert cls.op_kinds <= set(CATALOG)
    sim = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.config.bits = 4
    for bad in ({"bits": 9}, {"bits": 1}, {"bits": True}, {"sram_kib": 0}, {"skip_zeros": "yes"},
                {"not_an_option": 1}):
        with pytest.raises(ConfigError):
            cls(**bad)
    result = sim.fit(digits_task, seed=0).evaluate(digits_task)
    assert result.accuracy > 0.7 and result.n_evaluated == len(digits_task.y_test)
    assert result.n_params == 10 * 64 + 10
    totals = result.ledger.totals
    assert set(totals) == cls.op_kinds
    assert all(v > 0 and v == int(v) for v in totals.values())
    assert result.precision == "int8" and result.ledger.resident_bytes == 10 * 64 + 10 * 4


def test_example_counts_what_it_executed(toy_npu, digits_task):
    """MACs follow the non-zero inputs actually fetched; labels match an independent argmin."""
    sim = toy_npu.ToyNPU().fit(digits_task, seed=0)
    dense = toy_npu.ToyNPU(skip_zeros=False).fit(digits_task, seed=0)
    x = digits_task.x_test.reshape(len(digits_task.x_test), -1)
    xq = toy_npu.quantize(x, sim.scale, sim.config.bits)
    n, f, k = *xq.shape, digits_task.n_classes
    sparse_run, dense_run = sim.evaluate(digits_task), dense.evaluate(digits_task)
    assert sparse_run.ledger.totals["mac_int8"] == np.count_nonzero(xq) * k
    assert dense_run.ledger.totals["mac_int8"] == n * f * k
    assert sparse_run.ledger.totals["sram_byte"] == n * f + np.count_nonzero(xq) * k + n * (4 * k + 1)
    assert sparse_run.ledger.totals["cmp_int32"] == n * (k - 1)
    assert sparse_run.ledger.totals["host_transfer_byte"] == n * (f + 1)  # input in, label out
    assert sparse_run.accuracy == dense_run.accuracy  # skipping zeros changes cost, not results
    d2 = ((xq[:, None, :].astype(np.int64) - sim.weights[None].astype(np.int64)) ** 2).sum(-1)
    assert sparse_run.accuracy == np.mean(d2.argmin(1) == digits_task.y_test)


def test_example_prices_on_its_preset(toy_npu, digits_task, reg):
    preset = load_preset(TOY_PRESET)
    assert set(preset.ops) == toy_npu.ToyNPU.op_kinds and preset.paradigms == ("gpu",)
    assert Path(toy_npu.PRESET_FILE) == TOY_PRESET
    ledger = toy_npu.ToyNPU().fit(digits_task, seed=0).evaluate(digits_task).ledger
    rep = price(ledger, preset)
    assert rep.energy_j > 0 and rep.low_j <= rep.energy_j <= rep.high_j
    assert math.isclose(sum(rep.breakdown_j.values()), rep.energy_j, rel_tol=1e-12)
    assert rep.latency_s is not None and rep.latency_s > 0
    # The numbers are the published ones of the CMOS presets: nominal 7 nm, high 45 nm (at
    # their 32 KB SRAM price: without resident bytes they do not pick an array by size).
    plain = ledger.with_resident_bytes(0)
    assert rep.energy_j == pytest.approx(price(plain, reg.preset("cmos-7nm")).energy_j, rel=1e-12)
    assert rep.high_j == pytest.approx(price(plain, reg.preset("cmos-45nm")).energy_j, rel=1e-12)
    assert {p.name for p in reg.presets_for("gpu", toy_npu.ToyNPU.op_kinds)} >= {"cmos-45nm", "cmos-7nm"}


def test_example_is_deterministic(toy_npu, digits_task):
    runs = [toy_npu.ToyNPU(bits=6).fit(digits_task, seed=3).evaluate(digits_task) for _ in range(2)]
    assert runs[0].accuracy == runs[1].accuracy
    assert dict(runs[0].ledger.totals) == dict(runs[1].ledger.totals)
