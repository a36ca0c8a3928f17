"""nonvon recount: cached cells evaluated again from their stored parameters, without training.

One small comparison (digits, gpu-mlp and snn-mlp with tiny budgets) is computed once per
module; each test works on its own copy of that folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from nonvon._io import shared_tensor_refs
from nonvon.cli import run as run_cli
from nonvon.compare import compare, csv_columns, load_cell, recount
from nonvon.energy_models.catalog import COST_CLASSES
from nonvon.registry import registry
from nonvon.simulators.gpu import GpuMLP

QUIET = {"progress": False, "log": lambda m: None}
SIMS = ["gpu-mlp", "snn-mlp"]
TINY = {"gpu-mlp": {"hidden": (16,), "epochs": 2, "batch_size": 64, "device": "cpu"},
        "snn-mlp": {"hidden": (16,), "epochs": 1, "timesteps": 4, "batch_size": 64,
                    "device": "cpu"}}
SUBSET = (300, 100)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes: to show that nothing was written."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def cells_by_sim(folder: Path) -> dict[str, dict]:
    return {d["simulator"]: d for d in
            (json.loads(p.read_text()) for p in (folder / "cache").glob("*.json"))}


def compare_one(name: str, cls: type, out: Path):
    """Compare the extra simulator ``cls`` (registered as ``name``, the tiny gpu-mlp config) into
    ``out``; returns the registry that knows it."""
    full = registry()
    reg = dataclasses.replace(full, simulators={**full.simulators, name: cls})
    compare(["digits"], [name], subset=SUBSET, out_dir=out, reg=reg, report=False,
            overrides={name: TINY["gpu-mlp"]}, **QUIET)
    return reg


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recount") / "res"
    compare(["digits"], SIMS, subset=SUBSET, overrides=TINY, out_dir=out, report=False, **QUIET)
    return out


@pytest.fixture
def folder(computed, tmp_path) -> Path:
    return Path(shutil.copytree(computed, tmp_path / "res"))


def test_each_cell_keeps_its_parameters_beside_its_json(folder):
    for cell in cells_by_sim(folder).values():
        st = cell["stored_state"]
        params = folder / "cache" / st["file"]
        assert params.suffix == ".safetensors" and params.stat().st_size == st["bytes"]
        assert params.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
        assert st["split"] == "test" and st["limit"] is None and len(st["task_fingerprint"]) == 64


def test_recount_reproduces_every_cell_exactly_without_training(folder, monkeypatch):
    before_cells = cells_by_sim(folder)
    before_rows = json.loads((folder / "results.json").read_text())["rows"]
    (folder / "report.md").write_text("stale")  # a folder with a report gets it rewritten

    def no_training(self, *a, **k):
        raise AssertionError("recount trained a network")

    for name in SIMS:  # any fit during the recount fails the test
        monkeypatch.setattr(registry().simulators[name], "_fit", no_training)
    out = recount(folder, **QUIET)
    assert out.counts == {"recounted": 2, "changed": 0, "no_parameters": 0, "unreadable": 0,
                          "failed": 0}
    after_cells = cells_by_sim(folder)
    for name in SIMS:
        a, b = before_cells[name], after_cells[name]
        assert b["ledger"] == a["ledger"], name
        assert b["accuracy"] == a["accuracy"] and b["n_evaluated"] == a["n_evaluated"], name
        assert b["fit_wall_s"] == a["fit_wall_s"], "the fit time is kept"
        assert b["stored_state"] == a["stored_state"]
        assert b["recount"]["wall_s"] > 0 and b["recount"]["changed"] is False
        assert b["recount"]["previous"]["ledger"] == a["ledger"]
    rows = json.loads((folder / "results.json").read_text())["rows"]
    assert [r["recounted"] for r in rows] == [True] * len(before_rows)
    assert [{**r, "recounted": None} for r in rows] == [{**r, "recounted": None} for r in before_rows]
    assert "snn-mlp" in (folder / "report.md").read_text()


def test_a_counting_change_reaches_the_cells_and_the_rewritten_tables(folder, monkeypatch):
    before = {(r["simulator"], r["preset"]): r for r in
              json.loads((folder / "results.json").read_text())["rows"]}
    cls = registry().simulators["gpu-mlp"]
    counted = cls._predict

    def counts_twice_the_macs(self, x):  # a stand-in for a change to the counting rules
        pred = counted(self, x)
        totals = {k: (2 * v if k.startswith("mac_") else v) for k, v in pred.ledger.totals.items()}
        return dataclasses.replace(pred, ledger=dataclasses.replace(pred.ledger, totals=totals))

    monkeypatch.setattr(cls, "_predict", counts_twice_the_macs)
    out = recount(folder, **QUIET)
    assert out.counts["recounted"] == 2 and out.changed == [c for c in out.recounted if "gpu-mlp" in c]
    cell = cells_by_sim(folder)["gpu-mlp"]
    old = cell["recount"]["previous"]["ledger"]["totals"]
    assert cell["ledger"]["totals"]["mac_fp32"] == 2 * old["mac_fp32"]
    rows = json.loads((folder / "results.json").read_text())["rows"]
    for r in rows:
        was = before[(r["simulator"], r["preset"])]
        if r["simulator"] == "gpu-mlp":
            assert r["energy_per_inference_j"] > was["energy_per_inference_j"], r["preset"]
        else:
            assert r["energy_per_inference_j"] == was["energy_per_inference_j"]
    csv_rows = (folder / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(rows)


def test_cells_without_or_with_broken_parameters_are_reported_and_left_alone(folder, capsys):
    cells = {d["simulator"]: p for p in (folder / "cache").glob("*.json")
             for d in [json.loads(p.read_text())]}
    gpu_params = cells["gpu-mlp"].with_suffix(".safetensors")
    gpu_params.unlink()
    snn_params = cells["snn-mlp"].with_suffix(".safetensors")
    snn_params.write_bytes(snn_params.read_bytes()[:100])  # truncated
    kept = {p: p.read_bytes() for p in cells.values()}
    assert run_cli("recount", str(folder), "--no-progress") == 0
    err = capsys.readouterr().err
    assert "recounted 0 cell(s)" in err and "1 without parameters" in err
    assert "1 with unreadable parameters" in err and "0 failed" in err
    assert f"no parameters: digits|subset300,100,s0 / gpu-mlp / seed 0: its parameters file " \
           f"{gpu_params} is missing" in err
    assert "unreadable: digits|subset300,100,s0 / snn-mlp" in err
    assert {p: p.read_bytes() for p in cells.values()} == kept, "a cell was rewritten"


class Stateless(GpuMLP):
    """gpu-mlp as a simulator that cannot save its trained state."""

    def state_tensors(self):
        raise NotImplementedError("Stateless keeps its state in Python objects")


def test_a_simulator_that_cannot_save_its_state_gets_no_file_and_says_why(tmp_path):
    out = tmp_path / "res"
    reg = compare_one("stateless", Stateless, out)
    (path,) = (out / "cache").glob("*.json")
    cell = load_cell(path)
    assert cell.stored_state["file"] is None
    assert "Python objects" in cell.stored_state["reason"]
    assert not list((out / "cache").glob("*.safetensors"))
    before = path.read_bytes()
    got = recount(out, reg=reg, **QUIET)
    assert got.recounted == [] and got.no_parameters == [
        (cell.label, "Stateless keeps its state in Python objects")]
    assert path.read_bytes() == before


def test_data_that_is_not_here_is_refused_per_cell(folder, capsys):
    cells = {d["simulator"]: (p, d) for p in (folder / "cache").glob("*.json")
             for d in [json.loads(p.read_text())]}
    path, cell = cells["snn-mlp"]
    cell["stored_state"]["task_fingerprint"] = "0" * 64  # computed on other data
    path.write_text(json.dumps(cell))
    before = path.read_bytes()
    assert run_cli("recount", str(folder / "cache"), "--no-progress") == 1
    err = capsys.readouterr().err
    assert "recounted 1 cell(s)" in err and "1 failed" in err
    assert "is not the data the cell was computed on" in err and "--data-dir" in err
    assert path.read_bytes() == before


def test_a_task_given_as_data_cannot_be_rebuilt(digits_task, tmp_path):
    out = tmp_path / "res"
    compare([digits_task], ["gpu-mlp"], overrides={"gpu-mlp": TINY["gpu-mlp"]}, out_dir=out,
            report=False, **QUIET)
    got = recount(out, **QUIET)
    ((label, why),) = got.failed
    assert "'digits-test' is not a registered task here" in why


def test_sweep_cells_keep_parameters_and_recount_keeps_their_config_columns(tmp_path):
    from nonvon.sweep import run_sweep

    grid = {"tasks": [{"name": "digits", "subset": list(SUBSET)}], "presets": ["cmos-45nm"],
            "simulators": [{"name": "gpu-mlp", "set": {"hidden": [16], "batch_size": 64,
                                                       "device": "cpu"},
                            "grid": {"epochs": [1, 2]}}]}
    out = tmp_path / "sweep"
    run_sweep(grid, out_dir=out, executor="inline", write_report=False, **QUIET)
    assert len(list((out / "cache").glob("*.safetensors"))) == 2
    rows = json.loads((out / "results.json").read_text())["rows"]
    for r in rows:  # the accounting fields reach a sweep's rows too
        assert r["boundary"] and r["precision"] == "fp32"
        assert set(r["energy_by_class_j"]) == set(COST_CLASSES)
    got = recount(out, **QUIET)
    assert got.counts["recounted"] == 2 and got.counts["changed"] == 0
    again = json.loads((out / "results.json").read_text())["rows"]
    assert [{**r, "recounted": None} for r in again] == [{**r, "recounted": None} for r in rows]
    assert [r["config_label"] for r in again] == ["epochs=1", "epochs=2"]


def test_csv_spreads_energy_by_class_over_one_column_per_class(folder):
    import csv

    rows = json.loads((folder / "results.json").read_text())["rows"]
    with (folder / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == csv_columns()
    assert "energy_by_class_j" not in table[0]
    for row, line in zip(rows, table, strict=True):
        assert line["boundary"] == row["boundary"] and line["precision"] == row["precision"]
        for c in COST_CLASSES:
            assert float(line[f"energy_{c}_j"]) == row["energy_by_class_j"][c]


def test_a_measured_row_has_empty_class_columns():
    from nonvon.compare import rows_to_csv

    row = {"task": "t", "simulator": "s", "kind": "measured", "preset": "nvml-fp32-b1",
           "energy_by_class_j": dict.fromkeys(COST_CLASSES), "energy_per_inference_j": 1e-6}
    header, line = rows_to_csv([row]).splitlines()
    values = dict(zip(header.split(","), line.split(","), strict=True))
    assert all(values[f"energy_{c}_j"] == "" for c in COST_CLASSES)
    assert values["energy_per_inference_j"] == "1e-06"


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", "is not a folder"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no cached cells"),
    (lambda d: (d / "results.json").write_text('{"rows": []}') and d, "has no cache folder"),
])
def test_bad_folders_exit_2_and_write_nothing(tmp_path, capsys, make, message):
    target = make(tmp_path)
    before = snapshot(tmp_path)
    assert run_cli("recount", str(target), "--no-progress") == 2
    err = capsys.readouterr().err
    assert message in err and "fix:" in err
    assert snapshot(tmp_path) == before


def test_an_unreadable_cell_exits_2_before_anything_is_written(folder, capsys):
    (folder / "cache" / "0123456789abcdef01234567.json").write_bytes(b"\x80\x04not json")
    before = snapshot(folder)
    assert run_cli("recount", str(folder), "--no-progress") == 2
    err = capsys.readouterr().err
    assert "0123456789abcdef01234567.json is not a JSON file written by nonvon" in err
    assert "fix: delete it" in err
    assert snapshot(folder) == before


def test_an_unregistered_preset_needs_its_file(folder, capsys, tmp_path):
    src = registry().preset("cmos-45nm").path
    custom = tmp_path / "my-node.toml"
    custom.write_text(Path(src).read_text().replace('name = "cmos-45nm"', 'name = "my-node"', 1))
    out = tmp_path / "custom"
    compare(["digits"], ["gpu-mlp"], presets=[str(custom)], subset=SUBSET,
            overrides={"gpu-mlp": TINY["gpu-mlp"]}, out_dir=out, report=False, **QUIET)
    before = snapshot(out)
    assert run_cli("recount", str(out), "--no-progress") == 2
    assert "preset 'my-node'" in capsys.readouterr().err and snapshot(out) == before
    assert run_cli("recount", str(out), "--preset", str(custom), "--no-progress") == 0
    assert {r["preset"] for r in json.loads((out / "results.json").read_text())["rows"]} == {"my-node"}


class Metered(GpuMLP):
    """gpu-mlp with a stand-in hardware energy counter, so a test can see when it is read."""

    reads = 0

    @property
    def measures_hardware(self) -> bool:
        return self.config.measure_energy

    def _measure(self, net, xt):
        from nonvon.result import Measurement

        type(self).reads += 1
        return (Measurement("meter-b1", 1e-6, 1e-3, 1, {"read": type(self).reads}),)


def test_hardware_readings_are_kept_not_taken_again(tmp_path):
    out = tmp_path / "res"
    reg = compare_one("metered", Metered, out)
    assert Metered.reads == 1
    got = recount(out, reg=reg, **QUIET)
    assert got.counts["recounted"] == 1 and Metered.reads == 1, "the meter was read again"
    (path,) = (out / "cache").glob("*.json")
    cell = load_cell(path).result
    assert cell.config["measure_energy"] is True, "the cell's config is the one it was fitted with"
    assert [m.details for m in cell.measurements] == [{"read": 1}]
    measured = [r for r in json.loads((out / "results.json").read_text())["rows"]
                if r["kind"] == "measured"]
    assert [(r["preset"], r["recounted"]) for r in measured] == [("meter-b1", True)]


def test_the_recount_benchmark_times_a_fit_against_its_recount(capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "recount.py"
    spec = importlib.util.spec_from_file_location("recount_bench_under_test", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rec = bench.main(["--quick", "--sims", "gpu-mlp"])
    cell = rec["cells"]["gpu-mlp"]
    assert cell["recounted"] and cell["same_ledger"] and cell["same_accuracy"]
    assert rec["ratio"] == cell["ratio"] == pytest.approx(cell["fit_s"] / cell["recount_s"], rel=0.01)
    assert rec["met"] == (cell["ratio"] >= bench.TARGET)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == rec


def test_a_ledger_no_preset_can_price_stops_the_recount_before_anything_is_written(
        folder, capsys, monkeypatch):
    from nonvon.errors import IncompatibleError
    from nonvon.result import Result

    def cannot(self, preset):  # as when a counting change adds a kind a preset lacks
        raise IncompatibleError(f"preset {preset.name!r} cannot price this ledger", "add the kind")

    monkeypatch.setattr(Result, "priced", cannot)
    before = snapshot(folder)
    assert run_cli("recount", str(folder), "--no-progress") == 2
    assert "cannot price this ledger" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_a_folder_a_sweep_is_writing_to_is_refused(folder, capsys):
    import fcntl

    with open(folder / ".sweep.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        before = snapshot(folder)
        assert run_cli("recount", str(folder), "--no-progress") == 2
    assert "another nonvon sweep is writing" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_a_training_shared_by_precision_variants_is_stored_once(tmp_path, capsys):
    # gpu-mlp-int8 keeps the fp32 network it was quantized from: the same tensors as gpu-mlp's
    out = tmp_path / "res"
    tiny = {"hidden": (64,), "epochs": 1, "batch_size": 64, "device": "cpu"}
    compare(["mnist-5k"], ["gpu-mlp", "gpu-mlp-int8"], subset=(300, 100), out_dir=out,
            overrides={"gpu-mlp": tiny, "gpu-mlp-int8": tiny}, report=False, **QUIET)
    shared = sorted((out / "cache" / "tensors").glob("*.safetensors"))
    cells = cells_by_sim(out)
    refs = {sim: shared_tensor_refs((out / "cache" / c["stored_state"]["file"]).read_bytes())
            for sim, c in cells.items()}
    # the 784 x 64 fp32 weight is one file, named by both cells
    assert refs["gpu-mlp"]["1.weight"] == refs["gpu-mlp-int8"]["fp32.1.weight"]
    assert len(shared) == len(set(refs["gpu-mlp"].values()) | set(refs["gpu-mlp-int8"].values()))
    assert run_cli("recount", str(out), "--no-progress") == 0
    assert "recounted 2 cell(s)" in capsys.readouterr().err
    # a damaged shared tensor makes every cell that names it unreadable, and none is rewritten
    blob = out / "cache" / "tensors" / f"{refs['gpu-mlp']['1.weight']}.safetensors"
    blob.write_bytes(blob.read_bytes()[:-4] + b"\0\0\0\0")
    assert run_cli("recount", str(out), "--no-progress") == 0
    err = capsys.readouterr().err
    assert "2 with unreadable parameters" in err and "does not match its SHA-256" in err


def test_recount_of_chosen_simulators_leaves_the_other_cells_alone(folder, capsys):
    before = cells_by_sim(folder)
    assert run_cli("recount", str(folder), "--sim", "snn-mlp", "--no-progress") == 0
    assert "recounted 1 cell(s)" in capsys.readouterr().err
    after = cells_by_sim(folder)
    assert "recount" in after["snn-mlp"] and "recount" not in after["gpu-mlp"]
    assert after["gpu-mlp"] == before["gpu-mlp"]
    # a simulator the folder has no cell of is named, before anything is written
    kept = snapshot(folder)
    assert run_cli("recount", str(folder), "--sim", "loihi", "--no-progress") == 2
    assert "no cell of loihi" in capsys.readouterr().err and snapshot(folder) == kept
