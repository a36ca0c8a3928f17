"""studies/energy_sensitivity.py and studies/mnist_comparison.py on tiny inputs."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

import nonvon
from nonvon.energy_models import OpLedger
from nonvon.energy_models.preset import preset_from_dict
from nonvon.errors import ConfigError, UnknownNameError
from nonvon.result import Result

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def _study(name: str):
    """A study script imported as a module (scripts import their neighbours by name)."""
    if str(STUDIES) not in sys.path:
        sys.path.insert(0, str(STUDIES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def sensitivity():
    return _study("energy_sensitivity")


class _Presets:
    """A stand-in registry that knows only the presets given to it."""

    def __init__(self, *presets):
        self.presets = {p.name: p for p in presets}

    def preset(self, name):
        if name not in self.presets:
            raise UnknownNameError(f"unknown preset {name!r}")
        return self.presets[name]


def _preset(name, paradigm, pj, low, high, static_w=None):
    data = {"name": name, "paradigms": [paradigm], "boundary": "core",
            "absent": {"memory": "test fixture: a register-only datapath"},
            "ops": {"mac_fp32": {"energy_pj": pj, "low_pj": low, "high_pj": high,
                                 "time_s": 1e-9, "resource": "compute", "source": "test"}}}
    if static_w:
        data["static"] = {"power_w": static_w[0], "low_w": static_w[1], "high_w": static_w[2],
                          "source": "test"}
    return preset_from_dict(data)


def _row(task, simulator, paradigm, preset, accuracy, macs):
    res = Result(task=task, simulator=simulator, paradigm=paradigm, seed=0, accuracy=accuracy,
                 n_evaluated=1, ledger=OpLedger({"mac_fp32": macs}, n_inferences=1),
                 sim_wall_s=0.0, fit_wall_s=0.0, n_params=1, config={})
    return res.priced(preset).modelled_row()


def test_sensitivity_moves_energies_the_right_way_and_finds_the_break_even(sensitivity):
    # "photonic": 10 MACs x 1 pJ = 10 pJ (bounds 0.5 .. 5 pJ per MAC); "gpu": 20 MACs x 1 pJ
    # plus static 1 mW (bounds 0 .. 2 mW) over 20 x 1 ns = 20 pJ, 40 pJ in all. Photonic wins
    # by 4x and loses above 4 pJ per MAC, which is within its bounds.
    photonic = _preset("photo", "optical", 1.0, 0.5, 5.0)
    gpu = _preset("gpu", "gpu", 1.0, 1.0, 1.0, static_w=(1e-3, 0.0, 2e-3))
    rows = [_row("t", "onn", "optical", photonic, 0.95, 10), _row("t", "mlp", "gpu", gpu, 0.96, 20)]
    assert rows[0]["energy_per_inference_j"] == pytest.approx(10e-12)
    assert rows[1]["energy_per_inference_j"] == pytest.approx(40e-12)
    result = sensitivity.analyse(rows, reg=_Presets(photonic, gpu), match="off", log=lambda m: None)
    t = result["tasks"]["t"]
    assert t["nominal"]["energy"]["ranking"] == ["optical", "gpu"]
    scen = {s["scenario"]: s["energy"] for s in t["scenarios"]}
    # each constant moves only its own preset's rows, in the direction of its bound
    assert scen["photo.mac_fp32 low"]["best_j"] == pytest.approx({"optical": 5e-12, "gpu": 40e-12})
    assert scen["photo.mac_fp32 high"]["best_j"] == pytest.approx({"optical": 50e-12, "gpu": 40e-12})
    assert scen["gpu.static low"]["best_j"] == pytest.approx({"optical": 10e-12, "gpu": 20e-12})
    assert scen["gpu.static high"]["best_j"] == pytest.approx({"optical": 10e-12, "gpu": 60e-12})
    assert scen["photo.mac_fp32 high"]["changed"] and not scen["gpu.static low"]["changed"]
    assert scen["all high"]["ranking"] == ["optical", "gpu"]  # 50 pJ vs 60 pJ
    assert scen["all low"]["ranking"] == ["optical", "gpu"]   # 5 pJ vs 20 pJ
    (c,) = t["conclusions"]
    assert (c["winner"], c["loser"], c["ratio"]) == ("optical", "gpu", pytest.approx(4.0))
    (hinge,) = c["hinges"]
    assert hinge["constant"] == "photo.mac_fp32" and hinge["bound"] == "high"
    assert hinge["break_even"] == pytest.approx(4.0, rel=1e-9)  # 10 x 4 pJ = 40 pJ
    assert not c["robust"] and "photo.mac_fp32 > 4 pJ" in c["text"]


def test_matched_accuracy_leaves_out_paradigms_that_do_not_reach_it(sensitivity):
    p = _preset("p", "gpu", 1.0, 0.5, 2.0)
    q = _preset("q", "hdc", 1.0, 0.5, 2.0)
    rows = [_row("t", "mlp", "gpu", p, 0.95, 100), _row("t", "hd", "hdc", q, 0.80, 10),
            _row("t", "hd-big", "hdc", q, 0.97, 50)]
    result = sensitivity.analyse(rows, reg=_Presets(p, q), log=lambda m: None)
    t = result["tasks"]["t"]
    assert t["matched_accuracy"] == pytest.approx(0.94)
    assert t["nominal"]["energy"]["best"]["hdc"]["row"] == "hd @ q"          # cheapest at all
    assert t["nominal"]["matched"]["best"]["hdc"]["row"] == "hd-big @ q"     # cheapest >= 94%


# -- the comparison study on a tiny subset ----------------------------------------------------
@pytest.fixture(scope="module")
def study_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist-comparison")
    code = _study("mnist_comparison").main(
        ["--task", "digits", "--sim", "gpu-mlp,hdc-projection", "--quick", "--subset", "300,100",
         "--set", "gpu-mlp.device=cpu", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_mnist_comparison_writes_every_output(study_out):
    for name in ("results.json", "results.csv", "report.md", "report.html",
                 "accuracy_vs_energy.png", "energy_breakdown.png", "latency.png",
                 "sensitivity.json", "sensitivity.md", "sensitivity_tornado.png"):
        assert (study_out / name).stat().st_size > 0, name
    rows = json.loads((study_out / "results.json").read_text())["rows"]
    assert {r["simulator"] for r in rows} == {"gpu-mlp", "hdc-projection"}
    assert {r["task"] for r in rows} == {"digits|subset300,100,s0"}  # --subset, not cut again
    assert (study_out / "sensitivity_tornado.png").read_bytes()[:4] == b"\x89PNG"
    md = (study_out / "report.md").read_text()
    assert "## Energy sensitivity" in md and "sensitivity_tornado.png" in md
    assert (study_out / "report.html").read_text().count("data:image/png;base64,") == 4


def test_sensitivity_on_real_ledgers_moves_each_best_energy_with_its_bound(study_out):
    result = json.loads((study_out / "sensitivity.json").read_text())
    (t,) = result["tasks"].values()
    nominal = {p: v["energy_j"] for p, v in t["nominal"]["energy"]["best"].items()}
    assert set(nominal) == {"gpu", "hdc"} and result["constants"]
    for s in t["scenarios"]:
        for p, e in s["energy"]["best_j"].items():
            if s["bound"] == "low":
                assert e <= nominal[p] * (1 + 1e-12), s["scenario"]
            else:
                assert e >= nominal[p] * (1 - 1e-12), s["scenario"]
    assert any(s["energy"]["best_j"] != nominal for s in t["scenarios"])


def test_report_cli_rebuilds_the_html_with_the_sensitivity_section(study_out, tmp_path,
                                                                    monkeypatch):
    import base64
    import shutil

    from nonvon import report
    from nonvon.cli import main

    tiny = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAA"
                            "AgABSK+kcQAAAABJRU5ErkJggg==")
    for name in ("accuracy_vs_energy_png", "energy_breakdown_png", "latency_png"):
        monkeypatch.setattr(report, name, lambda rows: tiny)  # the pages are under test here
    folder = tmp_path / "copy"
    shutil.copytree(study_out, folder)
    (folder / "report.html").unlink()
    main(["report", str(folder)])
    page = (folder / "report.html").read_text()
    assert "<h2>Energy sensitivity</h2>" in page


def test_jobs_prefill_fills_the_cache_compare_reads(tmp_path, capsys):
    """--jobs 2 computes the cells in workers under compare's keys: a rerun computes nothing."""
    argv = ["--task", "digits", "--sim", "gpu-mlp,hdc-projection", "--quick", "--subset", "300,100",
            "--set", "gpu-mlp.device=cpu", "--out", str(tmp_path), "--no-progress"]
    study = _study("mnist_comparison")
    assert study.main([*argv, "--jobs", "2"]) == 0
    assert "0 cell(s) computed, 2 taken from the cache" in capsys.readouterr().err
    cells = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*.json")]
    assert len(cells) == 2
    # the wall times were taken with two cells sharing the machine, and the record says so
    assert all(c["machine"].endswith("up to 2 cells at once") for c in cells)
    assert study.main(argv) == 0
    assert "0 cell(s) computed, 2 taken from the cache" in capsys.readouterr().err


def test_jobs_leave_hardware_measuring_cells_to_run_alone(tmp_path, monkeypatch):
    from nonvon.simulators.gpu.simulator import GpuMLP

    monkeypatch.setattr(GpuMLP, "measures_hardware", property(lambda self: True))
    monkeypatch.setattr(GpuMLP, "_measure", lambda self, net, xt: ())  # no GPU here to read
    said = []
    outcome = nonvon.compare(["digits"], ["gpu-mlp", "hdc-projection", "hdc-idlevel"], out_dir=tmp_path,
                             quick=True, subset=(300, 100), jobs=2,
                             overrides={"gpu-mlp": {"device": "cpu"}}, progress=False,
                             log=said.append)
    shared = {r.simulator: r.machine.endswith("cells at once") for r in outcome.results}
    # the HDC cells ran in two workers side by side; the measuring one ran alone, here
    assert shared == {"hdc-projection": True, "hdc-idlevel": True, "gpu-mlp": False}
    assert outcome.computed == 1 and outcome.cached == 2
    # ... after a worker trained it (its fit shares training through the memo), so that only
    # loading and measuring were left to run alone
    assert any(m.startswith("trained digits") and "/ gpu-mlp /" in m for m in said)
    mlp = next(r for r in outcome.results if r.simulator == "gpu-mlp")
    assert mlp.metrics.get("training_shared") == 1.0


def test_jobs_must_be_positive(tmp_path, capsys):
    assert _study("mnist_comparison").main(["--task", "digits", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "--jobs 0" in capsys.readouterr().err


def test_jobs_skip_simulators_that_do_not_fit_the_task(tmp_path):
    """--sim all skips a simulator that cannot hold the task; the worker pool must too."""
    outcome = nonvon.compare(["digits"], ["all"], out_dir=tmp_path, quick=True, subset=(100, 50),
                             jobs=2, progress=False, log=lambda m: None,
                             overrides={"vqc": {"preprocess": "none", "n_features": None,
                                                "n_qubits": 4}})
    ran = {r.simulator for r in outcome.results}
    assert "vqc" not in ran and {"hdc-projection", "loihi", "onn-mzi"} <= ran
    # every cell that does not read a hardware counter came out of the worker pool
    pooled = [r for r in outcome.results if not r.simulator.startswith("gpu-")]
    assert all(r.machine.endswith("up to 2 cells at once") for r in pooled)


def test_jobs_need_an_output_folder_and_task_names(tmp_path):
    reg = nonvon.registry()
    with pytest.raises(ConfigError, match="output folder"):
        nonvon.compare(["digits"], ["hdc-projection"], jobs=2, progress=False)
    with pytest.raises(ConfigError, match="task names"):
        nonvon.compare([reg.task("digits")], ["hdc-projection"], jobs=2, out_dir=tmp_path,
                       progress=False)


def test_summary_names_the_machines_the_cells_ran_on():
    rows = [{"task": t, "simulator": s, "seed": 0, "machine": m, "preset": p}
            for t, s, m in (("mnist", "gpu-mlp", "H200 box"), ("mnist", "hdc-projection", "laptop"),
                            ("fashion-mnist", "gpu-mlp", "H200 box"))
            for p in ("cmos-45nm", "cmos-7nm")]  # a cell's presets are one cell, not several
    assert _study("mnist_comparison").cells_by_machine(rows) == "2 on H200 box; 1 on laptop"
