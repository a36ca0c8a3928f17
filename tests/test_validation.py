"""Validation at every boundary (issue #20, items 1-3 and the display item): every value that
enters nonvon is checked where it enters, with one message format (where: file and key or
flag; what is wrong; what is allowed; the fix). Each case asserts exit code 2 or the
documented exception, a message naming the input and a fix, and that nothing was written or
lost. tests/test_bad_input.py holds the first round's cases; these are new ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from nonvon._io import atomic_write_json
from nonvon.cli import run as run_cli
from nonvon.compare import compare
from nonvon.errors import ConfigError, DataError, PresetError
from nonvon.registry import registry
from nonvon.simulator import check_domain
from nonvon.tasks import Task


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: nothing written, nothing lost."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def refused(args: list[str], names: list[str], capsys, folder: Path) -> str:
    """Exit code 2; stderr names every string in ``names`` and a fix; ``folder`` unchanged."""
    before = tree(folder)
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err, err
    assert "fix:" in err, err
    assert tree(folder) == before, "something was written or lost"
    return err


FAST_SET = {"epochs": 1, "hidden": (8,), "device": "cpu"}
FAST = ["--task", "digits", "--sim", "gpu-mlp", "--set", "gpu-mlp.epochs=1",
        "--set", "gpu-mlp.hidden=[8]", "--set", "gpu-mlp.device=\"cpu\"", "--no-progress"]


# -- 1. config fields: --set values ----------------------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("lr", "NaN"), ("lr", "nan"), ("lr", "Infinity"), ("lr", "-Infinity"), ("lr", "inf"),
    ("lr", "-inf"), ("dropout", "NaN"), ("weight_decay", "Infinity"), ("hidden", "[64, NaN]"),
    ("measure_batches", "[1, Infinity]"),
], ids=lambda v: str(v))
def test_non_finite_set_values_are_refused_at_the_flag(option, value, tmp_path, capsys):
    err = refused(["compare", "--task", "digits", "--sim", "gpu-mlp", "--set",
                   f"gpu-mlp.{option}={value}", "--out", str(tmp_path / "o")],
                  [f"--set gpu-mlp.{option}", "finite"], capsys, tmp_path)
    assert "allowed:" in err


@pytest.mark.parametrize("sim, option", [("gpu-mlp", "hidden"), ("gpu-cnn", "channels"),
                                         ("gpu-cnn", "hidden"), ("snn-mlp", "hidden"),
                                         ("onn-mzi", "hidden"), ("gpu-mlp", "measure_batches")])
def test_an_empty_layer_list_is_refused_not_a_silent_linear_model(sim, option, tmp_path, capsys):
    err = refused(["compare", "--task", "digits", "--sim", sim, "--set", f"{sim}.{option}=[]",
                   "--out", str(tmp_path / "o")], [f"option {option}", "is empty"], capsys,
                  tmp_path)
    assert "non-empty tuple" in err


def test_an_option_set_twice_is_refused(tmp_path, capsys):
    refused(["compare", "--task", "digits", "--sim", "gpu-mlp", "--set", "gpu-mlp.epochs=1",
             "--set", "gpu-mlp.epochs=2", "--out", str(tmp_path / "o")],
            ["--set gpu-mlp.epochs", "given twice"], capsys, tmp_path)


def _float_fields(name: str) -> list[str]:
    cls = registry().simulators[name]
    base = cls.Config(**cls.defaults)
    return [f.name for f in dataclasses.fields(base) if isinstance(getattr(base, f.name), float)]


@pytest.mark.parametrize("name", sorted(registry().simulators))
def test_every_simulator_refuses_nan_and_infinity_in_every_float_option(name):
    """The base class checks every number of every config, whatever the simulator's own
    checks cover."""
    fields = _float_fields(name)
    assert fields, f"{name} has no float option"
    for field in fields:
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(ConfigError) as e:
                registry().simulator(name, **{field: bad})
            assert field in e.value.message and e.value.hint, (name, field, str(e.value))


def test_infinity_inside_a_tuple_option_is_refused():
    with pytest.raises(ConfigError, match="photon_curve") as e:
        registry().simulator("onn-mzi", photon_curve=(1.0, math.inf))
    assert e.value.hint


# -- 1. preset entries ---------------------------------------------------------------------------
PRESET = """name = "absurd"
paradigms = ["gpu"]
boundary = "core"
[absent]
memory = "test fixture: register-only datapath (test value)"
[ops.mac_fp32]
energy_pj = 4.6
source = "test fixture, not a real device"
"""


@pytest.mark.parametrize("change, key", [
    (("energy_pj = 4.6", "energy_pj = 1e308"), "energy_pj"),
    (("energy_pj = 4.6", "energy_pj = 2e15"), "energy_pj"),
    (("energy_pj = 4.6", "energy_pj = nan"), "energy_pj"),
    (("energy_pj = 4.6", "energy_pj = inf"), "energy_pj"),
    (("energy_pj = 4.6", "energy_pj = 4.6\nhigh_pj = 1e300"), "high_pj"),
    (("energy_pj = 4.6", "energy_pj = 4.6\nlow_pj = -inf"), "low_pj"),
    (("energy_pj = 4.6", "energy_pj = 4.6\ntime_s = 1e9"), "time_s"),
    (("energy_pj = 4.6", "energy_pj = 4.6\ntime_s = nan"), "time_s"),
    (("[ops.mac_fp32]", '[static]\npower_w = 1e12\nsource = "test"\n[ops.mac_fp32]'), "power_w"),
    (("[absent]", '[memory]\nonchip_bytes = 1e30\nsource = "test"\n[absent]'), "onchip_bytes"),
], ids=["1e308", "2e15-pJ", "nan", "inf", "high-1e300", "low-minus-inf", "time-1e9",
        "time-nan", "static-1e12-W", "onchip-1e30"])
def test_absurd_preset_entries_are_refused_where_the_file_is_read(change, key, tmp_path, capsys):
    preset = tmp_path / "absurd.toml"
    preset.write_text(PRESET.replace(*change))
    err = refused(["compare", *FAST, "--preset", str(preset), "--out", str(tmp_path / "o")],
                  [str(preset), f"key {key!r}"], capsys, tmp_path)
    assert "allowed:" in err


def test_sram_tiers_beyond_any_device_are_refused(tmp_path):
    from nonvon.energy_models import load_preset

    preset = tmp_path / "tiers.toml"
    preset.write_text(PRESET.replace("[absent]\nmemory", "[memory]\nsram_tiers = [[1e30, 1.0]]\n"
                                     'source = "test"\n[absent]\nstatic'))
    with pytest.raises(PresetError) as e:
        load_preset(preset)
    assert "sram_tiers" in str(e.value) and str(preset) in str(e.value) and e.value.hint


def test_the_largest_entry_of_the_shipped_presets_is_far_inside_the_limits():
    from nonvon.energy_models.preset import LIMITS

    top = max(o.high for p in registry().presets.values() for o in p.ops.values())
    assert top < LIMITS["pj"][0] / 1e6  # the limits refuse typos, not devices


# -- 1. grid files -------------------------------------------------------------------------------
GRID = 'tasks = ["digits"]\nseeds = [0]\n[[simulators]]\nname = "gpu-mlp"\n'


@pytest.mark.parametrize("body, names", [
    ('set = { lr = nan, device = "cpu" }\n', ["lr"]),
    ('set = { lr = inf, device = "cpu" }\n', ["lr"]),
    ('set = { hidden = [], device = "cpu" }\n', ["hidden", "is empty"]),
    ('set = { device = "cpu" }\ngrid = { lr = [0.1, -inf] }\n', ["lr"]),
    ('set = { device = "cpu", hidden = [8, nan] }\n', ["hidden"]),
], ids=["set-nan", "set-inf", "set-empty-hidden", "grid-minus-inf", "nan-in-tuple"])
def test_grids_with_non_finite_or_empty_values_are_refused(body, names, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + body)
    refused(["sweep", str(grid), "--out", str(tmp_path / "o"), "--no-progress"],
            [str(grid), *names], capsys, tmp_path)


# -- 1 and 3. task arrays and the shared input domain ------------------------------------------------
def _task(**changes):
    rng = np.random.default_rng(0)
    kw = dict(name="t", x_train=rng.random((12, 8, 8), dtype=np.float32),
              y_train=np.arange(12) % 3, x_test=rng.random((6, 8, 8), dtype=np.float32),
              y_test=np.arange(6) % 3, n_classes=3)
    return Task(**{**kw, **changes})


@pytest.mark.parametrize("changes, names", [
    ({"y_train": np.array([0, 1, 2.7, 0, 1, 2, 0, 1, 2, 0, 1, 2])}, ["y_train", "float64"]),
    ({"y_train": (np.arange(12) % 3).astype(np.float32)}, ["y_train", "float32"]),
    ({"y_test": np.array([True, False] * 3)}, ["y_test", "bool"]),
    ({"y_train": list(np.arange(12) % 3)}, ["y_train", "list"]),
    ({"n_classes": 1}, ["n_classes=1"]),
    ({"n_classes": 2.5}, ["n_classes=2.5"]),
    ({"n_classes": True}, ["n_classes=True"]),
], ids=["float-labels", "integral-float-labels", "bool-labels", "list-labels", "one-class",
        "fractional-classes", "bool-classes"])
def test_task_arrays_are_not_coerced(changes, names):
    with pytest.raises(DataError) as e:
        _task(**changes)
    assert all(n in str(e.value) for n in names) and "task 't'" in str(e.value)
    assert e.value.hint and "allowed:" in e.value.message


def _simulators():
    return sorted(registry().simulators)


@pytest.mark.parametrize("name", _simulators())
def test_every_simulator_refuses_images_outside_0_1_alike(name):
    """One check in the base class: the same refusal, before any training, whichever simulator."""
    task = _task(x_train=np.full((12, 8, 8), 255, np.float32) * _task().x_train)
    sim = registry().simulator(name)
    with pytest.raises(DataError) as e:
        sim.check_task(task)
    assert "image values in [0, 1]" in str(e.value) and "task 't'" in str(e.value)
    with pytest.raises(DataError):
        sim.fit(task)  # fit checks too, before training
    assert sim._fitted_on is None


def test_feature_vectors_may_take_any_finite_value():
    rng = np.random.default_rng(0)
    task = Task("v", rng.normal(0, 40, (12, 5)).astype(np.float32), np.arange(12) % 3,
                rng.normal(0, 40, (6, 5)).astype(np.float32), np.arange(6) % 3, 3)
    check_domain(task)  # no error: PCA components are unbounded


def test_compare_refuses_out_of_range_images_before_writing_anything(tmp_path):
    task = _task(x_train=_task().x_train * 255)
    with pytest.raises(DataError, match="image values in"):
        compare([task], ["hdc-projection"], out_dir=tmp_path / "o", progress=False,
                log=lambda m: None)
    assert not (tmp_path / "o").exists()


# -- 1. CLI arguments: seeds and the output location ------------------------------------------------
@pytest.mark.parametrize("seeds, names", [
    ("1,1", ["--seeds", "repeats seed(s) [1]"]),
    ("0,1,2,1,0", ["--seeds", "repeats seed(s) [0, 1]"]),
    ("-1", ["--seeds", "seed -1"]),
], ids=["repeated", "repeated-twice", "negative"])
def test_bad_seeds_are_refused(seeds, names, tmp_path, capsys):
    refused(["compare", *FAST, "--seeds", seeds, "--out", str(tmp_path / "o")], names, capsys,
            tmp_path)


@pytest.mark.parametrize("seeds, message", [([0, 0], "repeats"), ("01", "not a list"),
                                            ([0, 1.5], "seed 1.5"), ([True], "seed True")],
                         ids=["repeated", "string", "float", "bool"])
def test_bad_seeds_in_python(seeds, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as e:
        compare(["digits"], ["gpu-mlp"], seeds=seeds, out_dir=tmp_path / "o", progress=False)
    assert e.value.hint and not (tmp_path / "o").exists()


def test_compare_out_naming_an_existing_file_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "o").write_text("precious")
    refused(["compare", *FAST, "--out", str(tmp_path / "o")], ["--out", "is a file"], capsys,
            tmp_path)
    assert (tmp_path / "o").read_text() == "precious"


def test_compare_out_through_a_file_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "f").write_text("precious")
    refused(["compare", *FAST, "--out", str(tmp_path / "f" / "o")], ["--out", "is a file"],
            capsys, tmp_path)


def test_compare_out_in_a_folder_that_cannot_be_written_fails_before_any_work(
        tmp_path, capsys, monkeypatch):
    import tempfile

    from nonvon import _io

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io.tempfile, "mkstemp", read_only)  # as a read-only mount answers
    refused(["compare", *FAST, "--out", str(tmp_path / "o")],
            ["--out", "is not writable", "Permission denied"], capsys, tmp_path)
    assert tempfile.mkstemp is read_only  # the probe is the only write it tried


# -- 2. no work lost ---------------------------------------------------------------------------------
def test_results_that_cannot_be_written_go_to_a_named_fallback(tmp_path, monkeypatch, capsys):
    import importlib

    cmp = importlib.import_module("nonvon.compare")  # the module, not nonvon.compare()
    monkeypatch.setenv("NONVON_FALLBACK_DIR", str(tmp_path / "spare"))
    real = cmp.write_results

    def full_disk(rows, out_dir, report=True):
        if Path(out_dir).parent == tmp_path:
            raise OSError(28, "No space left on device")
        return real(rows, out_dir, report=report)

    monkeypatch.setattr(cmp, "write_results", full_disk)
    assert run_cli("compare", *FAST, "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "fix:" in err
    [spare] = (tmp_path / "spare").iterdir()
    assert str(spare) in err
    rows = json.loads((spare / "results.json").read_text())["rows"]
    assert rows and rows[0]["simulator"] == "gpu-mlp"
    # the cell itself is in the cache: rerunning the same compare does not train again
    monkeypatch.setattr(cmp, "write_results", real)
    again = compare(["digits"], ["gpu-mlp"], overrides={"gpu-mlp": FAST_SET}, report=False,
                    out_dir=tmp_path / "o", progress=False, log=lambda m: None)
    assert (again.computed, again.cached) == (0, 1)


def test_a_cell_that_cannot_be_cached_goes_to_a_named_fallback(tmp_path, monkeypatch):
    from nonvon import cells

    monkeypatch.setenv("NONVON_FALLBACK_DIR", str(tmp_path / "spare"))
    real = cells._save_cell

    def refuse_cache(path, *a):
        if "spare" not in str(path):
            raise PermissionError(13, "Permission denied")
        return real(path, *a)

    monkeypatch.setattr(cells, "_save_cell", refuse_cache)
    with pytest.raises(DataError) as e:
        compare(["digits"], ["gpu-mlp"], overrides={"gpu-mlp": FAST_SET}, report=False,
                out_dir=tmp_path / "o", progress=False, log=lambda m: None)
    [saved] = (tmp_path / "spare" / "cells").glob("*.json")
    assert str(saved) in str(e.value) and "Permission denied" in str(e.value) and e.value.hint
    assert json.loads(saved.read_text())["simulator"] == "gpu-mlp"


# -- 1. nothing non-finite is written to JSON ----------------------------------------------------------
@pytest.mark.parametrize("obj, place", [
    ({"rows": [{"accuracy": 0.9}, {"energy_per_inference_j": math.inf}]},
     "rows[1].energy_per_inference_j"),
    ({"a": {"b": [1.0, math.nan]}}, "a.b[1]"),
    ([-math.inf], "[0]"),
], ids=["row", "nested", "list"])
def test_json_with_nan_or_infinity_is_refused_naming_the_place(obj, place, tmp_path):
    path = tmp_path / "x.json"
    with pytest.raises(DataError) as e:
        atomic_write_json(path, obj)
    assert place in str(e.value) and str(path) in str(e.value) and e.value.hint
    assert list(tmp_path.iterdir()) == []


# -- 1. cached cells: an impossible cell is set aside (moved, not deleted) and recomputed ---------------
@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cells") / "res"
    assert run_cli("compare", *FAST, "--out", str(out)) == 0
    return out


def _edit(key: str, value):
    def edit(d):
        d[key] = value
        return json.dumps(d)
    return edit


CELL_DAMAGE = {
    "accuracy-above-1": (_edit("accuracy", 1.7), "'accuracy'"),
    "accuracy-negative": (_edit("accuracy", -0.1), "'accuracy'"),
    "accuracy-nan": (lambda d: json.dumps(d).replace(f'"accuracy": {d["accuracy"]}',
                                                      '"accuracy": NaN'), "not valid JSON"),
    "accuracy-string": (_edit("accuracy", "97%"), "'accuracy'"),
    "no-samples": (_edit("n_evaluated", 0), "'n_evaluated'"),
    "negative-seed": (_edit("seed", -3), "'seed'"),
    "negative-fit-time": (_edit("fit_wall_s", -1.0), "'fit_wall_s'"),
    "versions-not-strings": (_edit("versions", {"nonvon": 1}), "'versions'"),
    "negative-count": (lambda d: json.dumps({**d, "ledger": {**d["ledger"], "totals": {
        k: -1 for k in d["ledger"]["totals"]}}}), "counts are finite and >= 0"),
    "not-an-object": (lambda d: "[1, 2]", "is not a result record"),
}


@pytest.mark.parametrize("damage", sorted(CELL_DAMAGE))
def test_an_impossible_cached_cell_is_set_aside_and_recomputed(damage, computed, tmp_path):
    out = tmp_path / "res"
    shutil.copytree(computed, out)
    [cell] = (out / "cache").glob("*.json")
    edit, names = CELL_DAMAGE[damage]
    text = edit(json.loads(cell.read_text()))
    cell.write_text(text)
    said = []
    again = compare(["digits"], ["gpu-mlp"], overrides={"gpu-mlp": FAST_SET}, report=False,
                    out_dir=out, progress=False, log=said.append)
    notice = next(m for m in said if m.startswith("notice:"))
    assert "set aside" in notice and names in notice and str(cell) in notice, said
    assert (again.computed, again.cached) == (1, 0)
    [aside] = (out / "cache" / "set-aside").glob("*.json")
    assert aside.read_text() == text  # moved, not deleted
    assert aside.with_suffix(".safetensors").exists()  # its parameters went with it
    assert 0 <= json.loads(cell.read_text())["accuracy"] <= 1  # recomputed in its place
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert all(0 <= r["accuracy"] <= 1 for r in rows)


# -- 1. results files --------------------------------------------------------------------------------
ROW_DAMAGE = {
    "accuracy-7": ("accuracy", 7, "'accuracy'"),
    "accuracy-negative": ("accuracy", -0.5, "'accuracy'"),
    "accuracy-null": ("accuracy", None, "'accuracy'"),
    "energy-negative": ("energy_per_inference_j", -1e-9, "'energy_per_inference_j'"),
    "energy-string": ("energy_per_inference_j", "1 nJ", "'energy_per_inference_j'"),
    "latency-negative": ("latency_per_inference_s", -1.0, "'latency_per_inference_s'"),
    "samples-zero": ("n_evaluated", 0, "'n_evaluated'"),
}


@pytest.mark.parametrize("damage", sorted(ROW_DAMAGE))
@pytest.mark.parametrize("command", ["report", "energy"])
def test_impossible_values_in_results_json_are_refused(command, damage, computed, tmp_path,
                                                       capsys):
    out = tmp_path / "res"
    shutil.copytree(computed, out)
    path = out / "results.json"
    data = json.loads(path.read_text())
    field, value, name = ROW_DAMAGE[damage]
    data["rows"][0][field] = value
    path.write_text(json.dumps(data))
    args = ["report", str(out)] if command == "report" else ["energy", str(out), "--preset",
                                                             "cmos-45nm"]
    err = refused(args, [str(path), "rows[0]", name], capsys, tmp_path)
    assert "allowed:" in err


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_in_results_json_are_refused(literal, computed, tmp_path, capsys):
    out = tmp_path / "res"
    shutil.copytree(computed, out)
    path = out / "results.json"
    data = json.loads(path.read_text())
    text = json.dumps(data).replace(f'"accuracy": {data["rows"][0]["accuracy"]}',
                                    f'"accuracy": {literal}', 1)
    path.write_text(text)
    refused(["report", str(out)], [str(path), "is not a nonvon results file"], capsys, tmp_path)


# -- display: config labels are not Rich markup ----------------------------------------------------------
def test_config_labels_in_brackets_are_shown_not_swallowed(capsys):
    from nonvon.cli import _print_table

    row = {"task": "digits", "simulator": "gpu-mlp", "preset": "cmos-45nm", "kind": "modelled",
           "accuracy": 0.9, "energy_per_inference_j": 1e-9, "latency_per_inference_s": 1e-6,
           "fit_wall_s": 1.0}
    _print_table([{**row, "config_label": "epochs=1"}, {**row, "config_label": "epochs=2"}])
    out = capsys.readouterr().out
    assert "gpu-mlp[epochs=1]" in out and "gpu-mlp[epochs=2]" in out


def test_progress_status_shows_a_bracketed_label_as_written():
    import io

    from rich.console import Console

    from nonvon import progress

    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    real = progress.Progress

    def on(*columns, **kw):
        return real(*columns, console=console, **kw)

    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(progress, "Progress", on)
        with progress.progress_bar(True) as bar:
            job = bar.add_task("compare", total=1, status="digits / gpu-mlp[epochs=2] / seed 0")
            bar.advance(job)
    assert "gpu-mlp[epochs=2]" in buf.getvalue()
