"""A new paradigm from a package of its own: ``analog-toy`` (a toy in-memory-computing crossbar;
nonvon's own ``analog`` paradigm is a plugin too, so the toy takes another name).

The plugin is written by the test into a folder outside the repository: one module and a
``*.dist-info`` with its entry points, on PYTHONPATH, exactly what an installed distribution
gives ``importlib.metadata``. It declares the paradigm, its op kinds, its preset and its
simulator; nothing in nonvon names it. It must run through ``nonvon compare`` in its own
colour and pass the conformance suite that ships with nonvon, run from its own folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nonvon.errors import PresetError
from nonvon.paradigms import paradigm_names

COLOUR = "#13a37f"  # not a shade of any built-in paradigm, so the figure can be searched for it

PLUGIN = textwrap.dedent('''
    """Analog in-memory crossbar: class centroids stored as conductances, one read per class."""
    import dataclasses
    from pathlib import Path
    from typing import ClassVar

    import numpy as np

    from nonvon import Capabilities, ConfigError, OpKind, OpLedger, Prediction, Simulator
    from nonvon import register_op_kind
    from nonvon.paradigms import Paradigm

    PARADIGM = Paradigm("analog-toy", label="toy analog crossbar", order=50,
                        colours=("COLOUR",), headline_presets=("analog-xbar-chip",))
    register_op_kind(OpKind("xbar_mac_analog", "op", "one multiply-accumulate in a crossbar "
                            "column (Ohm and Kirchhoff)", cost_class="compute"))
    register_op_kind(OpKind("xbar_column_adc", "op", "one column current digitized",
                            cost_class="io"))
    PRESETS = Path(__file__).with_name("analog-xbar-chip.toml")


    @dataclasses.dataclass(frozen=True)
    class XbarConfig:
        adc_bits: int = 6

        def __post_init__(self):
            if isinstance(self.adc_bits, bool) or not isinstance(self.adc_bits, int) \\
                    or not 2 <= self.adc_bits <= 12:
                raise ConfigError(f"adc_bits={self.adc_bits!r} must be an integer in [2, 12]")


    class AnalogXbar(Simulator):
        paradigm = "analog-toy"
        Config = XbarConfig
        op_kinds: ClassVar[frozenset[str]] = frozenset({"xbar_mac_analog", "xbar_column_adc",
                                                        "sram_byte"})

        def __init__(self, config=None, /, **overrides):
            super().__init__(config, **overrides)
            self.g = None

        @property
        def capabilities(self):
            return Capabilities(max_features=256, max_classes=16)

        @property
        def precision(self):
            return "analog"

        @property
        def n_params(self):
            return 0 if self.g is None else self.g.size

        def _fit(self, task, *, seed, progress):
            x = task.x_train.reshape(len(task.x_train), -1)
            self.g = np.stack([x[task.y_train == k].mean(0) for k in range(task.n_classes)])

        def state_tensors(self):
            return {"g": self.g}

        def _load_state_tensors(self, tensors, task):
            self.g = np.asarray(tensors["g"])

        def _predict(self, x):
            x = x.reshape(len(x), -1)
            currents = x @ self.g.T - 0.5 * (self.g ** 2).sum(1)
            step = np.abs(currents).max() / 2 ** (self.config.adc_bits - 1)
            codes = np.round(currents / step)
            n, f = x.shape
            k = self.g.shape[0]
            ledger = OpLedger({"xbar_mac_analog": n * f * k, "xbar_column_adc": n * k,
                               "sram_byte": n * f}, n_inferences=n, resident_bytes=f)
            return Prediction(codes.argmax(1), ledger)
''').replace("COLOUR", COLOUR)

PRESET = textwrap.dedent('''
    name = "analog-xbar-chip"
    description = "A test crossbar chip (every number a test value, not a measurement)"
    paradigms = ["analog-toy"]
    boundary = "chip"

    [absent]
    interconnect = "test value: one crossbar, no network on chip (test preset)"
    static = "test value: static power not modelled (test preset)"

    [ops.xbar_mac_analog]
    energy_pj = 0.01
    low_pj = 0.005
    high_pj = 0.05
    source = "test value for nonvon's plugin test, not a measurement"

    [ops.xbar_column_adc]
    energy_pj = 2.0
    source = "test value for nonvon's plugin test, not a measurement"

    [ops.sram_byte]
    energy_pj = 0.1
    source = "test value for nonvon's plugin test, not a measurement"
''')

ENTRY_POINTS = {
    "nonvon.paradigms": {"analog": "nonvon_analog_xbar:PARADIGM"},
    "nonvon.simulators": {"analog-xbar": "nonvon_analog_xbar:AnalogXbar"},
    "nonvon.presets": {"analog-xbar": "nonvon_analog_xbar:PRESETS"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("analog-site")
    (site / "nonvon_analog_xbar.py").write_text(PLUGIN)
    (site / "analog-xbar-chip.toml").write_text(PRESET)
    info = site / "nonvon_analog_xbar-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nonvon-analog-xbar\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in ENTRY_POINTS.items()))
    return site


# One process runs both, as a plugin author would from their own folder: `nonvon compare`
# (the CLI's entry function), then pytest on a two-line test module of the plugin's own.
DRIVER = """
import sys
import pytest
from nonvon.cli import run

code = run("compare", "--task", "digits", "--sim", "analog-xbar", "--no-progress", "--out", sys.argv[1])
print("COMPARE EXIT", code, flush=True)
sys.exit(code or pytest.main(["-q", "-p", "no:cacheprovider", "test_conformance.py"]))
"""


@pytest.fixture(scope="module")
def ran(site, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    repo = tmp_path_factory.mktemp("plugin-repo")  # no nonvon conftest or pytest settings here
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "test_conformance.py").write_text(
        "from nonvon.conformance import install\n\ninstall(globals(), simulators=['analog-xbar'])\n")
    out = repo / "res"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *[p for p in [os.environ.get("PYTHONPATH")] if p]]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(out)], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=300)
    return proc, out


def test_a_paradigm_from_its_own_package_runs_through_compare_in_its_own_colour(ran):
    proc, out = ran
    assert "COMPARE EXIT 0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["simulator"], r["paradigm"], r["preset"], r["boundary"]) for r in rows] == [
        ("analog-xbar", "analog-toy", "analog-xbar-chip", "chip")]
    assert rows[0]["accuracy"] > 0.7 and rows[0]["energy_per_inference_j"] > 0
    assert set(rows[0]["ledger"]) == {"xbar_mac_analog", "xbar_column_adc", "sram_byte"}
    # its own colour in the figure: some pixels are exactly the paradigm's colour
    from matplotlib.image import imread

    png = imread(out / "accuracy_vs_energy.png")[..., :3]
    rgb = [int(COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    assert (abs(png - rgb).max(-1) < 1.5 / 255).sum() > 20, "the analog point is not in its colour"
    assert "| analog-xbar | analog-toy |" in (out / "report.md").read_text()  # in the headline table


def test_the_plugin_passes_the_shipped_conformance_suite_from_its_own_folder(ran):
    proc, _ = ran
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "8 passed" in proc.stdout


def test_a_preset_for_an_undeclared_paradigm_names_the_file_the_paradigm_and_the_fix(tmp_path):
    assert "analog-toy" not in paradigm_names()  # the plugin is not on this process's path
    path = tmp_path / "analog-xbar-chip.toml"
    path.write_text(PRESET.replace("[ops.xbar_mac_analog]", "[ops.mac_int8]")
                    .replace("[ops.xbar_column_adc]", "[ops.host_transfer_byte]"))
    from nonvon.energy_models import load_preset

    with pytest.raises(PresetError) as err:
        load_preset(path)
    text = str(err.value)
    assert str(path) in text and "'analog-toy'" in text
    assert all(p in text for p in paradigm_names()) and "nonvon.paradigms" in text
