"""A cell's cache key covers the code that computed it (issue #20, item 4).

A plugin is installed from outside the repository (a module and a ``*.dist-info`` on
PYTHONPATH, as in tests/test_paradigm_plugin.py); ``compare`` runs in a fresh process each
time, as a user's runs do. Editing the plugin's source, or installing another version of its
distribution, recomputes its cell instead of serving the old numbers from the cache; the
rows record every distribution that took part.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from nonvon.registry import registry
from nonvon.simulator import Simulator, code_identity

PLUGIN = textwrap.dedent('''
    """A nearest-centroid plugin counting one made-up op kind per class and sample."""
    import dataclasses
    from pathlib import Path
    from typing import ClassVar

    import numpy as np

    from nonvon import OpKind, OpLedger, Prediction, Simulator, register_op_kind
    from nonvon.paradigms import Paradigm

    PARADIGM = Paradigm("keytest", label="cache-key test paradigm", order=60,
                        colours=("#123456",), headline_presets=("keytest-chip",))
    register_op_kind(OpKind("keytest_op", "op", "one centroid distance (test kind)",
                            cost_class="compute"))
    PRESETS = Path(__file__).with_name("keytest-chip.toml")
    OPS_PER_DISTANCE = 1


    @dataclasses.dataclass(frozen=True)
    class Config:
        precision: str = "fp32"


    class Centroids(Simulator):
        paradigm = "keytest"
        Config = Config
        op_kinds: ClassVar[frozenset[str]] = frozenset({"keytest_op"})

        def _fit(self, task, *, seed, progress):
            x = task.x_train.reshape(len(task.x_train), -1)
            self.c = np.stack([x[task.y_train == k].mean(0) for k in range(task.n_classes)])

        def _predict(self, x):
            x = x.reshape(len(x), -1)
            d = ((x[:, None, :] - self.c[None]) ** 2).sum(-1)
            n = OPS_PER_DISTANCE * len(x) * len(self.c)
            return Prediction(d.argmin(1), OpLedger({"keytest_op": n}, n_inferences=len(x)))
''')

PRESET = textwrap.dedent('''
    name = "keytest-chip"
    description = "test values only"
    paradigms = ["keytest"]
    boundary = "core"

    [absent]
    memory = "test value: the test device has no memory cost (test preset)"

    [ops.keytest_op]
    energy_pj = 1.0
    source = "test value for nonvon's cache-key test, not a measurement"
''')

ENTRY_POINTS = ("[nonvon.paradigms]\nkeytest = nonvon_keytest:PARADIGM\n\n"
                "[nonvon.simulators]\nkeytest-centroids = nonvon_keytest:Centroids\n\n"
                "[nonvon.presets]\nkeytest = nonvon_keytest:PRESETS\n")

# compare through the Python API, with a registry of the plugin's entry points alone (the
# built-in simulators would take seconds to import, in every run), no report
DRIVER = """
import json, sys
from importlib.metadata import distribution
import numpy as np
from nonvon.compare import compare
from nonvon.paradigms import paradigms
from nonvon.registry import Registry, _presets_from
from nonvon.tasks import Task

eps = {ep.group: ep for ep in distribution("nonvon-keytest").entry_points}
reg = Registry(simulators={"keytest-centroids": eps["nonvon.simulators"].load()},
               paradigms=paradigms())
reg.presets = {p.name: p for p in _presets_from(eps["nonvon.presets"].load(), "test")}
rng = np.random.default_rng(0)
x, y = rng.random((200, 6), dtype=np.float32), np.arange(200) % 3
task = Task("blobs", x[:150], y[:150], x[150:], y[150:], 3)
out = compare([task], ["keytest-centroids"], out_dir=sys.argv[1], progress=False, reg=reg,
              report=False, log=lambda m: None)
print("OUTCOME", json.dumps({"computed": out.computed, "cached": out.cached,
                             "ops": out.rows[0]["ledger"]["keytest_op"],
                             "cell": out.rows[0]["cell"], "versions": out.rows[0]["versions"]}))
"""


def _install(site: Path, version: str = "0.1") -> None:
    (site / "nonvon_keytest.py").write_text(PLUGIN)
    (site / "keytest-chip.toml").write_text(PRESET)
    for old in site.glob("*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = site / f"nonvon_keytest-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nonvon-keytest\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)


def _compare(site: Path, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(site), *[p for p in [os.environ.get("PYTHONPATH")] if p]])}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(out)], env=env, cwd=site,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith("OUTCOME "))
    return json.loads(line.removeprefix("OUTCOME "))


def test_editing_a_plugin_recomputes_its_cell_and_rows_name_its_distribution(tmp_path):
    site, out = tmp_path / "site", tmp_path / "res"
    site.mkdir()
    _install(site)
    first = _compare(site, out)
    assert (first["computed"], first["cached"]) == (1, 0)
    assert first["versions"]["nonvon-keytest"] == "0.1"  # the plugin's distribution ...
    assert {"nonvon", "numpy", "torch"} <= set(first["versions"])  # ... beside the libraries
    again = _compare(site, out)  # unchanged code: the cache serves it
    assert (again["computed"], again["cached"], again["cell"]) == (0, 1, first["cell"])
    # the plugin's counting is edited: the old cell must not come back from the cache
    src = site / "nonvon_keytest.py"
    src.write_text(src.read_text().replace("OPS_PER_DISTANCE = 1", "OPS_PER_DISTANCE = 3"))
    edited = _compare(site, out)
    assert (edited["computed"], edited["cached"]) == (1, 0)
    assert edited["ops"] == 3 * first["ops"] and edited["cell"] != first["cell"]


def _load(path: Path, name: str, monkeypatch):
    """The module at ``path`` imported as ``name`` (in sys.modules until the test ends)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)
    spec.loader.exec_module(mod)
    return mod


def test_another_version_of_the_distribution_is_another_code_identity(tmp_path, monkeypatch):
    from nonvon import result

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    seen = []
    for version in ("0.1", "0.2"):
        _install(site, version)
        result._plugin_modules.cache_clear()
        result.module_distributions.cache_clear()
        cls = _load(site / "nonvon_keytest.py", "nonvon_keytest", monkeypatch).Centroids
        seen.append(code_identity(cls))
    result._plugin_modules.cache_clear()
    result.module_distributions.cache_clear()
    assert [s["distributions"] for s in seen] == [{"nonvon-keytest": "0.1"},
                                                   {"nonvon-keytest": "0.2"}]
    assert seen[0]["source"] == seen[1]["source"]  # same file, same hash


def test_the_source_hash_reads_the_code_not_where_it_is(tmp_path, monkeypatch):
    """The same module in two folders hashes alike (keys are the same on every machine);
    an edit changes it."""
    hashes = []
    for folder, text in (("a", PLUGIN), ("b", PLUGIN), ("c", PLUGIN + "\n# an edit\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "nonvon_keytest.py").write_text(text)
        cls = _load(tmp_path / folder / "nonvon_keytest.py", "nonvon_keytest", monkeypatch).Centroids
        hashes.append(code_identity(cls)["source"])
    assert hashes[0] == hashes[1] != hashes[2]


def test_the_code_identity_covers_the_simulator_classes_but_not_the_base_or_stdlib():
    from importlib.metadata import version

    sim = registry().simulator("loihi")
    ident = code_identity(type(sim))
    assert ident["distributions"] == {"nonvon": version("nonvon")}
    assert len(ident["source"]) == 64
    # a subclass defined here (this test file) is another code identity
    sub = type("Sub", (type(sim),), {"__module__": __name__})
    assert code_identity(sub)["source"] != ident["source"]
    # a class of no distribution, deriving from Simulator alone: no distribution to name
    bare = type("Bare", (Simulator,), {"__module__": "nonvon_no_such_module"})
    assert code_identity(bare)["distributions"] == {}
    # presets from an entry point name the distribution that gave them
    assert registry().preset("cmos-45nm").provided_by == {"nonvon": version("nonvon")}


GPU_PLUGIN = textwrap.dedent('''
    import dataclasses
    from typing import ClassVar

    import numpy as np

    from nonvon import OpLedger, Prediction, Simulator


    @dataclasses.dataclass(frozen=True)
    class Config:
        precision: str = "fp32"


    class Centroids(Simulator):
        paradigm = "gpu"
        Config = Config
        op_kinds: ClassVar[frozenset[str]] = frozenset({"mac_fp32"})

        def _fit(self, task, *, seed, progress):
            x = task.x_train.reshape(len(task.x_train), -1)
            self.c = np.stack([x[task.y_train == k].mean(0) for k in range(task.n_classes)])

        def state_tensors(self):
            return {"c": self.c}

        def _load_state_tensors(self, tensors, task):
            self.c = np.asarray(tensors["c"])

        def _predict(self, x):
            x = x.reshape(len(x), -1)
            n = len(x) * self.c.size
            return Prediction((x @ self.c.T - 0.5 * (self.c ** 2).sum(1)).argmax(1),
                              OpLedger({"mac_fp32": n}, n_inferences=len(x)))
''')


def test_a_recount_after_a_code_edit_files_the_cell_under_its_new_key(tmp_path, monkeypatch):
    """recount is how a counting change reaches cells without training: the recounted cell is
    filed under the key of the code that counted it, so compare then takes it from the cache."""
    from nonvon.compare import compare, recount
    from nonvon.registry import Registry

    src = tmp_path / "nonvon_centroids.py"
    src.write_text(GPU_PLUGIN)
    base = registry()

    def reg_of(text):
        src.write_text(text)
        cls = _load(src, "nonvon_centroids", monkeypatch).Centroids
        return Registry(simulators={"centroids": cls}, tasks=base.tasks, presets=base.presets,
                        paradigms=base.paradigms)

    run = dict(presets=["cmos-45nm"], out_dir=tmp_path / "res", progress=False, report=False,
               subset=(300, 100), log=lambda m: None)
    first = compare(["digits"], ["centroids"], reg=reg_of(GPU_PLUGIN), **run)
    old_key = first.rows[0]["cell"]
    reg = reg_of(GPU_PLUGIN.replace("len(x) * self.c.size", "2 * len(x) * self.c.size"))
    out = recount(tmp_path / "res", reg=reg, progress=False, log=lambda m: None)
    new_key = out.rows[0]["cell"]
    assert out.changed and new_key != old_key
    cache = tmp_path / "res" / "cache"
    assert sorted(p.name for p in cache.glob(f"{new_key}.*")) == [
        f"{new_key}.json", f"{new_key}.safetensors"]
    assert not list(cache.glob(f"{old_key}.*"))
    assert json.loads((cache / f"{new_key}.json").read_text())["recount"]["previous"]["cell"] == old_key
    again = compare(["digits"], ["centroids"], reg=reg, **run)
    assert (again.computed, again.cached) == (0, 1)
    assert again.rows[0]["ledger"]["mac_fp32"] == 2 * first.rows[0]["ledger"]["mac_fp32"]
