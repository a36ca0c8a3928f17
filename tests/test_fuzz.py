"""Fuzzing (hypothesis): generated CLI argument lists, preset TOMLs, grid TOMLs and task arrays.

Each input either works or is refused with a :class:`~nonvon.errors.NonvonError` (CLI: exit
code 2 and an ``error:`` line), never another exception or a traceback; what is accepted
holds its invariants. Budgets are small (``FUZZ``): the suite runs them on every ``make
test``; ``NONVON_FUZZ_EXAMPLES=2000`` runs a longer campaign.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nonvon.cli import run as run_cli
from nonvon.errors import ConfigError, NonvonError, PresetError

_CAMPAIGN = int(os.environ.get("NONVON_FUZZ_EXAMPLES", "0"))
# The suite's budget is small and derandomized (the same examples every run, so a failure is
# reproducible and not a flake); a campaign draws fresh ones.
FUZZ = settings(max_examples=_CAMPAIGN or 25, derandomize=not _CAMPAIGN, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# -- a TOML writer for generated data (inline tables only: any nesting is valid TOML) ----------
def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_value(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml_text(d: dict) -> str:
    return "".join(f"{toml_value(k)} = {toml_value(v)}\n" for k, v in d.items())


@contextlib.contextmanager
def toml_file(data: dict | str):
    """``data`` (a table, or raw text) written to a TOML file in a fresh folder."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.toml"
        path.write_text(data if isinstance(data, str) else toml_text(data), encoding="utf-8")
        yield path


scalars = st.one_of(st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6),
                    st.sampled_from([0.0, 1e-300, 1e308, -0.5, 1.0]))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


# -- preset TOMLs --------------------------------------------------------------------------
OP_KINDS = ["mac_int8", "sram_byte", "dram_byte", "kernel_launch", "emulation_s", "mac_int9"]


@st.composite
def preset_tables(draw) -> dict:
    ops = {}
    for kind in draw(st.lists(st.sampled_from(OP_KINDS), min_size=1, max_size=4, unique=True)):
        unit = "w" if kind == "emulation_s" else "pj"
        key = "power_w" if unit == "w" else "energy_pj"
        entry = {key: draw(numbers), "source": draw(st.sampled_from(["a datasheet", "", "x"]))}
        for opt in draw(st.lists(st.sampled_from([f"low_{unit}", f"high_{unit}", "time_s",
                                                  "resource", "hihg_pj"]), max_size=3, unique=True)):
            entry[opt] = draw(st.one_of(numbers, junk)) if opt != "resource" else draw(junk)
        ops[kind] = entry if draw(st.integers(0, 9)) else draw(junk)
    table = {"name": draw(st.sampled_from(["fuzz", "", "a b"])),
             "paradigms": draw(st.sampled_from([["gpu"], ["gpu", "spiking"], [], ["nope"], "gpu"])),
             "boundary": draw(st.sampled_from(["core", "chip", "system", "galaxy"])), "ops": ops}
    if draw(st.booleans()):
        table["static"] = {"power_w": draw(numbers), "source": "leakage"}
    if draw(st.booleans()):
        table["absent"] = draw(st.sampled_from([
            {"interconnect": "one core, no network on chip", "io": "measured at the core only",
             "static": "no static power in this bound"}, {"cooling": "no fans here, none"}, {}]))
    if draw(st.booleans()):
        table["memory"] = draw(st.one_of(junk, st.just(
            {"onchip_bytes": 1e6, "sram_tiers": [[1e3, 1.0], [1e6, 2.0]], "source": "s"})))
    return table


@FUZZ
@given(preset_tables())
def test_a_preset_toml_loads_with_sound_numbers_or_is_refused(table):
    from nonvon.energy_models import load_preset

    with toml_file(table) as path:
        try:
            p = load_preset(path)
        except PresetError as e:
            assert "preset" in e.message
            return
    for kind, op in p.ops.items():
        assert all(math.isfinite(v) and v >= 0 for v in (op.low, op.value, op.high)), kind
        assert op.low <= op.value <= op.high and op.source.strip()
        assert op.time_s is None or (math.isfinite(op.time_s) and op.time_s >= 0)
    assert math.isfinite(p.static_power_w) and p.static_power_w >= 0


@FUZZ
@given(st.text(max_size=200))
def test_any_text_as_a_preset_file_is_a_preset_error(text):
    from nonvon.energy_models import load_preset

    with toml_file(text) as path, pytest.raises(PresetError):
        load_preset(path)


# -- grid TOMLs ----------------------------------------------------------------------------
@st.composite
def grid_tables(draw) -> dict:
    task = st.one_of(st.sampled_from(["digits", "", "nope"]), st.fixed_dictionaries(
        {"name": st.sampled_from(["digits", "", 3])},
        optional={"downsample": st.one_of(st.integers(-2, 9), junk),
                  "subset": st.one_of(st.lists(st.integers(-5, 2000), max_size=4), junk),
                  "classes": st.one_of(st.lists(st.integers(-1, 12), max_size=3), junk),
                  "pcaa": st.integers(1, 4)}))
    sim = st.one_of(st.sampled_from(["gpu-mlp", "", "nope"]), st.fixed_dictionaries(
        {"name": st.sampled_from(["gpu-mlp", "hdc", ""])},
        optional={"set": st.one_of(st.dictionaries(st.sampled_from(["epochs", "lr", "hidden"]),
                                                   junk, max_size=2), junk),
                  "grid": st.one_of(st.dictionaries(st.sampled_from(["epochs", "lr", "seed"]),
                                                    st.lists(scalars, max_size=3), max_size=2),
                                    junk)}))
    table = {"tasks": draw(st.one_of(st.lists(task, max_size=3), task)),
             "simulators": draw(st.one_of(st.lists(sim, max_size=3), sim))}
    for key, values in (("seeds", st.one_of(st.lists(st.integers(-2, 5), max_size=4), junk)),
                        ("presets", st.one_of(st.lists(st.sampled_from(["cmos-45nm", "x.toml", ""]),
                                                       max_size=2), junk)),
                        ("quick", st.one_of(st.booleans(), junk)),
                        ("max_cells", st.one_of(st.integers(-1, 10**7), junk)),
                        ("description", junk), ("outt", junk)):
        if draw(st.booleans()):
            table[key] = draw(values)
    return table


def _no_nan(v) -> bool:
    if isinstance(v, float):
        return not math.isnan(v)
    if isinstance(v, list):
        return all(_no_nan(x) for x in v)
    if isinstance(v, dict):
        return all(_no_nan(x) for x in v.values())
    return True


@FUZZ
@given(grid_tables())
def test_a_grid_toml_parses_the_same_as_its_dict_or_is_refused(table):
    from nonvon.grids import Grid, load_grid

    try:
        from_dict = Grid.from_dict(table)
    except ConfigError as e:
        from_dict = e
    with toml_file(table) as path:
        try:
            from_file = load_grid(path)
        except ConfigError as e:
            from_file = e
    assert type(from_dict) is type(from_file)
    if isinstance(from_file, ConfigError):
        assert from_file.hint, "every refusal says how to fix it"
        return
    # accepted: counted size, no repeated seeds, and the same grid either way
    assert from_file.size == len(from_file.tasks) * len(from_file.seeds) * sum(
        s.n_configs for s in from_file.simulators) >= 1
    assert len(set(from_file.seeds)) == len(from_file.seeds)
    if _no_nan(table):
        assert (from_file.tasks, from_file.simulators, from_file.seeds) == (
            from_dict.tasks, from_dict.simulators, from_dict.seeds)


# -- task arrays ---------------------------------------------------------------------------
@st.composite
def task_arrays(draw):
    n_tr, n_te = draw(st.integers(0, 6)), draw(st.integers(0, 4))
    feat = draw(st.sampled_from([(4,), (3, 3), (), (2, 2, 2)]))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int64, np.bool_]))
    elems = (st.one_of(st.floats(-1, 300, width=32), st.sampled_from([np.nan, np.inf]))
             if dtype in (np.float32, np.float64) else None)
    x = [draw(hnp.arrays(dtype, (n,) + feat, elements=elems)) for n in (n_tr, n_te)]
    label_dtype = draw(st.sampled_from([np.int64, np.float64, np.int8]))
    y = [draw(hnp.arrays(label_dtype, (n + draw(st.sampled_from([0, 0, 0, 1])),),
                         elements=st.integers(-1, 11) if label_dtype != np.float64 else
                         st.one_of(st.floats(-1, 11), st.just(np.nan)))) for n in (n_tr, n_te)]
    return x, y, draw(st.integers(-1, 12))


@FUZZ
@given(task_arrays())
def test_task_arrays_make_a_sound_task_or_a_clear_error(arrays):
    from nonvon.tasks import Task

    (x_tr, x_te), (y_tr, y_te), n_classes = arrays
    try:
        task = Task("fuzz", x_tr, y_tr, x_te, y_te, n_classes)
    except NonvonError as e:
        assert e.hint and "fuzz" in e.message
        return
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        assert x.dtype == np.float32 and np.isfinite(x).all() and len(x) == len(y)
        assert len(y) == 0 or (y.min() >= 0 and y.max() < task.n_classes)


# -- CLI argument lists --------------------------------------------------------------------
class _WouldRun(Exception):
    """Raised instead of training: the arguments passed every check before the work."""


TOKENS = ["--sim", "gpu-mlp", "nope", "all", "--seeds", "0", "0,1", "-1", "x", "--set",
          "gpu-mlp.lr=NaN", "gpu-mlp.hidden=[]", "gpu-mlp.epochs=1", "gpu-mlp.epochs=-3",
          "gpu-mlp.nope=1", "gpu-mlp.lr=1e308", "=", "--jobs", "0", "2", "--preset",
          "cmos-45nm", "nope.toml", "--quick", "--no-progress", "--bogus", "--json", "--dry-run",
          "--retry-failed", "--threads", "--executor", "inline", "ray", "", "\x00"]


@st.composite
def cli_args(draw, folder: str):
    cmd = draw(st.sampled_from(["list", "compare", "sweep", "report", "energy", "recount",
                                "nope", "--help-me"]))
    args = [cmd]
    if cmd == "compare":  # always a task that needs no download, and a fresh output folder
        args += ["--task", draw(st.sampled_from(["digits", "nope", "digits,digits", ""])),
                 "--out", f"{folder}/out"]
    elif cmd == "sweep":
        grid = draw(st.sampled_from(["grid.toml", "missing.toml", "bad.toml"]))
        args += [f"{folder}/{grid}", "--dry-run", "--out", f"{folder}/sweep-out"]
    elif cmd in ("report", "energy", "recount"):
        args += [draw(st.sampled_from([f"{folder}/none", f"{folder}/grid.toml", folder]))]
    return args + draw(st.lists(st.sampled_from(TOKENS), max_size=6))


@settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_cli_arguments_run_or_exit_2_with_a_message_never_a_traceback(data, capsys, monkeypatch):
    import importlib

    compare_module = importlib.import_module("nonvon.compare")  # not nonvon.compare, the function

    def would_run(*a, **k):
        raise _WouldRun

    monkeypatch.setattr(compare_module, "execute", would_run)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "grid.toml").write_text(
            'tasks = ["digits"]\nseeds = [0, 1]\nsimulators = ["gpu-mlp"]\n')
        Path(folder, "bad.toml").write_text('tasks = ["digits"\n')
        args = data.draw(cli_args(folder))
        try:
            code = run_cli(*args)
        except _WouldRun:
            return
        out, err = capsys.readouterr()
    assert code in (0, 2), (args, err[-2000:])
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error:") or "usage:" in err, (args, err[-2000:])
