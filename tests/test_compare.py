"""compare / report / energy: outputs, schema, caching, resume after SIGKILL, CLI errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from nonvon.cli import run as run_cli
from nonvon.compare import compare, csv_columns
from nonvon.energy_models.catalog import COST_CLASSES
from nonvon.result import ROW_FIELDS

QUICK = ["--task", "digits", "--quick", "--no-progress"]


def test_compare_writes_every_output_with_the_documented_schema(tmp_path, capsys):
    out = tmp_path / "res"
    assert run_cli("compare", *QUICK, "--sim", "gpu-mlp,gpu-cnn", "--out", str(out)) == 0
    for name in ("results.json", "results.csv", "report.md", "accuracy_vs_energy.png",
                 "energy_breakdown.png"):
        assert (out / name).stat().st_size > 0, name
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["simulator"] for r in rows} == {"gpu-mlp", "gpu-cnn"}
    assert {r["preset"] for r in rows} >= {"gpu-h100", "cmos-45nm", "cmos-7nm"}
    for r in rows:
        assert set(ROW_FIELDS) <= set(r)
        assert r["paradigm"] == "gpu" and r["energy_per_inference_j"] > 0
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    # every row field, energy by cost class as one column per class in its place
    assert header == csv_columns()
    assert [c for c in header if (not c.startswith("energy_") or c in ROW_FIELDS)
            and c not in ("config_label", "config")] == \
        [f for f in ROW_FIELDS if f != "energy_by_class_j"]
    assert header[header.index("simulator") + 1:][:2] == ["config_label", "config"]
    assert {f"energy_{c}_j" for c in COST_CLASSES} <= set(header)
    assert "gpu-mlp" in capsys.readouterr().out  # the terminal table
    assert (out / "accuracy_vs_energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_takes_every_cell_from_the_cache(tmp_path):
    kwargs = dict(quick=True, out_dir=tmp_path, progress=False, log=lambda m: None)
    first = compare(["digits"], ["gpu-mlp"], seeds=(0, 1), **kwargs)
    again = compare(["digits"], ["gpu-mlp"], seeds=(0, 1), **kwargs)
    assert (first.computed, first.cached) == (2, 0)
    assert (again.computed, again.cached) == (0, 2)
    assert [r.accuracy for r in again.results] == [r.accuracy for r in first.results]
    changed = compare(["digits"], ["gpu-mlp"], seeds=(0,), overrides={"gpu-mlp": {"epochs": 1}},
                      **kwargs)
    assert changed.computed == 1, "a different config is a different cell"


def test_results_are_identical_across_runs_apart_from_timings(tmp_path):
    def rows(d):
        compare(["digits"], ["gpu-mlp"], quick=True, out_dir=d, progress=False, log=lambda m: None)
        data = json.loads((d / "results.json").read_text())["rows"]
        for r in data:
            del r["sim_wall_s"], r["fit_wall_s"]
        return data

    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_killed_compare_resumes_without_recomputing_finished_cells(tmp_path):
    out = tmp_path / "res"
    # gpu-cnn is made slow so the kill lands while it trains, after gpu-mlp has finished.
    cmd = [sys.executable, "-m", "nonvon.cli", "compare", *QUICK, "--sim", "gpu-mlp,gpu-cnn",
           "--set", "gpu-cnn.epochs=12", "--set", "gpu-cnn.batch_size=16", "--out", str(out)]
    log = tmp_path / "first-run.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    cache = out / "cache"
    deadline = time.monotonic() + 120
    while not (cache.exists() and list(cache.glob("*.json"))):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "first cell never finished"
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = list(cache.glob("*.json"))
    assert len(done) == 1
    stamp = done[0].stat().st_mtime_ns
    json.loads(done[0].read_text())  # complete, valid JSON
    assert not (out / "results.json").exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 cell(s) computed, 1 taken from the cache" in rerun.stderr
    assert done[0].stat().st_mtime_ns == stamp, "the finished cell was recomputed"
    assert len(list(cache.glob("*.json"))) == 2
    assert {r["simulator"] for r in json.loads((out / "results.json").read_text())["rows"]} == {
        "gpu-mlp", "gpu-cnn"}
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert all(name.startswith(".") for name in leftovers)


def test_energy_reprices_saved_ledgers(tmp_path, capsys):
    out = tmp_path / "res"
    compare(["digits"], ["gpu-mlp"], quick=True, out_dir=out, progress=False, log=lambda m: None)
    rows = json.loads((out / "results.json").read_text())["rows"]
    by_preset = {r["preset"]: r["energy_per_inference_j"] for r in rows}
    capsys.readouterr()
    assert run_cli("energy", str(out), "--preset", "cmos-7nm", "--json") == 0
    repriced = json.loads(capsys.readouterr().out)["priced"]
    assert repriced[0]["energy_j"] == pytest.approx(by_preset["cmos-7nm"], rel=1e-12)
    assert run_cli("energy", str(out), "--preset", "no-such-preset") == 2


def test_report_rebuilds_from_results_folder(tmp_path):
    out = tmp_path / "res"
    compare(["digits"], ["gpu-mlp"], quick=True, out_dir=out, progress=False, log=lambda m: None)
    (out / "report.md").unlink()
    (out / "energy_breakdown.png").unlink()
    assert run_cli("report", str(out)) == 0
    assert "gpu-mlp" in (out / "report.md").read_text()
    assert (out / "energy_breakdown.png").exists()


@pytest.mark.parametrize("args, message", [
    (["compare", "--sim", "gpu-mpl"], "unknown simulator 'gpu-mpl'"),
    (["compare", "--task", "mnsit"], "unknown task 'mnsit'"),
    (["compare", "--preset", "cmos-3nm"], "unknown preset 'cmos-3nm'"),
    (["compare", "--set", "gpu-mlp.epochs"], "cannot read --set"),
    (["compare", "--set", "gpu-mlp.epochz=3", "--sim", "gpu-mlp"], "no config option"),
    (["compare", "--set", "gpu-mlp.epochs=-3", "--sim", "gpu-mlp"], "epochs=-3"),
    (["compare", "--seeds", "one"], "--seeds"),
    (["compare", "--preset", "missing/dir/x.toml"], "does not exist"),
    (["report", "nowhere"], "does not exist"),
    (["compare", "--bogus-flag"], "unrecognized arguments"),
])
def test_cli_errors_exit_2_with_a_fix_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    cmd = [*args, "--out", str(out)] if args[0] == "compare" else args
    assert run_cli(*[a if a != "nowhere" else str(tmp_path / "nowhere") for a in cmd]) == 2
    err = capsys.readouterr().err
    assert message in err and "fix:" in err
    assert not out.exists()


def test_malformed_preset_file_is_a_clear_cli_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nparadigms = ["gpu"]\n[ops.mac_fp32\nenergy_pj = 1\n')
    assert run_cli("compare", "--task", "digits", "--preset", str(bad), "--out",
                   str(tmp_path / "o")) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_list_json_schema(capsys):
    assert run_cli("list", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"tasks", "paradigms", "simulators", "presets", "broken"}
    paradigms = [p["name"] for p in info["paradigms"]]
    assert {"gpu", "spiking", "optical", "hdc", "quantum"} <= set(paradigms)
    orders = [p["order"] for p in info["paradigms"]]
    assert orders == sorted(orders)  # display order
    assert {"mnist", "fashion-mnist", "mnist-5k", "digits"} <= set(info["tasks"])
    sims = {s["name"]: s for s in info["simulators"]}
    assert sims["gpu-mlp"]["paradigm"] == "gpu"
    presets = {p["name"]: p for p in info["presets"]}
    assert {"cmos-45nm", "cmos-7nm", "gpu-h100"} <= set(presets)
    assert all(set(p["paradigms"]) <= set(paradigms) for p in presets.values())




def test_figures_cope_with_more_presets_than_marker_shapes(tmp_path):
    from nonvon.report import write_report

    row = {"task": "t", "simulator": "s", "paradigm": "gpu", "kind": "modelled", "accuracy": 0.9,
           "energy_per_inference_j": 1e-6, "energy_low_j": 5e-7, "energy_high_j": 2e-6,
           "energy_breakdown_j": {"mac_fp32": 1e-6}, "latency_per_inference_s": None,
           "fit_wall_s": 0.0, "sim_wall_s": 0.0, "ledger": {"mac_fp32": 10.0}, "assumptions": []}
    rows = [{**row, "preset": f"p{i}"} for i in range(25)]
    write_report(rows, tmp_path)
    assert (tmp_path / "accuracy_vs_energy.png").stat().st_size > 0


def test_cli_compare_jobs_computes_cells_in_workers(tmp_path, capsys):
    out = tmp_path / "out"
    args = ("compare", "--task", "digits", "--sim", "hdc-projection,hdc-idlevel", "--quick",
            "--out", str(out), "--no-progress")
    assert run_cli(*args, "--jobs", "2") == 0
    assert "0 cell(s) computed, 2 taken from the cache" in capsys.readouterr().err
    cells = [json.loads(p.read_text()) for p in (out / "cache").glob("*.json")]
    assert len(cells) == 2 and all(c["machine"].endswith("up to 2 cells at once") for c in cells)
    assert run_cli(*args, "--jobs", "0") == 2
    assert "--jobs" in capsys.readouterr().err


def test_simulators_skipped_under_sim_all_are_listed_in_the_report(tmp_path):
    import dataclasses

    from nonvon.registry import registry

    full = registry()
    # a registry of two cheap simulators, so that "all" stays small
    reg = dataclasses.replace(full, simulators={k: full.simulators[k]
                                                for k in ("hdc-projection", "truenorth")})
    task = "mnist-5k"  # 784 inputs: more than a TrueNorth core's axons hold
    compare([task], ["all"], out_dir=tmp_path, quick=True, subset=(200, 50), progress=False,
            log=lambda m: None, reg=reg)
    md = (tmp_path / "report.md").read_text()
    assert "## Not run" in md
    assert "| truenorth | mnist-5k\\|subset200,50,s0 | truenorth holds at most 128 input" in md
    # a later run with nothing skipped leaves no stale list behind
    compare([task], ["hdc-projection"], out_dir=tmp_path, quick=True, subset=(200, 50),
            progress=False, log=lambda m: None, reg=reg)
    assert "## Not run" not in (tmp_path / "report.md").read_text()


def test_execution_options_do_not_re_key_a_cell(digits_task):
    """A cell computed with a TTFS step replayed as a CUDA graph is the same experiment as one
    computed eagerly (equal to rounding): same key. A training setting is another experiment."""
    from nonvon.compare import cell_key
    from nonvon.registry import registry

    reg = registry()
    key = cell_key(digits_task, reg.simulator("snn-ttfs"), 0)
    assert cell_key(digits_task, reg.simulator("snn-ttfs", cuda_graph=False), 0) == key
    assert cell_key(digits_task, reg.simulator("onn-mzi", device="cpu"), 0) == \
        cell_key(digits_task, reg.simulator("onn-mzi"), 0)
    assert cell_key(digits_task, reg.simulator("snn-ttfs", epochs=59), 0) != key
    assert cell_key(digits_task, reg.simulator("snn-ttfs"), 1) != key
