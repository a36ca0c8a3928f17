"""Every worked example of docs/bring-your-own.md runs, and the evaluate command."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from nonvon import evaluate_cli
from nonvon.errors import ConfigError, IncompatibleError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bring-your-own.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
NEEDS = {"snntorch": "nirtorch", "qiskit": "qiskit", "torchhd": "torchhd"}


def _section(code: str) -> str:
    return next((k for k in NEEDS if f"import {k}" in code or f"from {k}" in code), "torch")


def test_the_doc_has_one_example_per_ecosystem():
    assert sorted(_section(b) for b in BLOCKS) == ["qiskit", "snntorch", "torch", "torchhd"]


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")
@pytest.mark.parametrize("code", BLOCKS, ids=_section)
def test_doc_example_runs(code):
    need = NEEDS.get(_section(code))
    if need:
        pytest.importorskip(need)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{DOC.name}:{_section(code)}", "exec"), {"__name__": "__doc_example__"})
    printed = out.getvalue().split()
    assert printed, "the example prints its accuracy and energy"
    numbers = [float(v) for v in printed if re.fullmatch(r"[-+0-9.e]+", v)]
    assert numbers and all(n >= 0 for n in numbers)


def _evaluate(*argv):
    p = argparse.ArgumentParser()
    evaluate_cli.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["evaluate", *argv])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        args.func(args)
    return out.getvalue()


def test_evaluate_command_prices_a_nir_file(tmp_path):
    nir = pytest.importorskip("nir")
    import numpy as np

    rng = np.random.default_rng(0)
    n = 16
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([64])),
        "fc1": nir.Affine(weight=rng.normal(size=(n, 64)), bias=np.zeros(n)),
        "lif": nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n)),
        "fc2": nir.Affine(weight=rng.normal(size=(10, n)), bias=np.zeros(10)),
        "out": nir.I(r=np.full(10, 1e4)),
        "output": nir.Output(output_type=np.array([10]))},
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "out"), ("out", "output")])
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    row = json.loads(_evaluate(str(path), "--task", "digits", "--preset", "loihi", "--set",
                               "timesteps=4", "--limit", "20", "--json", "--out",
                               str(tmp_path / "r.json")))
    assert row["preset"] == "loihi" and row["n_evaluated"] == 20 and row["energy_per_inference_j"] > 0
    assert (tmp_path / "r.json").exists()
    with pytest.raises(IncompatibleError, match="truenorth"):
        _evaluate(str(path), "--task", "digits", "--preset", "truenorth")
    with pytest.raises(ConfigError, match="not key=value"):
        _evaluate(str(path), "--task", "digits", "--preset", "loihi", "--set", "timesteps")
