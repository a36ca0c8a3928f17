# %% [markdown]
# # nonvon in a notebook
#
# A small comparison on scikit-learn's 8x8 `digits`: the GPU-baseline MLP against a
# hyperdimensional (HDC) classifier, each trained briefly and priced on every preset of its
# paradigm, then looked at as tables and a figure.
#
# This file is a notebook in the "percent" format: each `# %%` line starts a cell. VS Code
# and PyCharm run it cell by cell; `jupytext --to notebook docs/examples/notebook.py` turns it
# into an `.ipynb` for Jupyter. It also runs as a plain script
# (`python docs/examples/notebook.py`, seconds on a CPU), printing what Jupyter would draw as
# text; its last line is one JSON object. The tests run it (tests/test_notebook.py).

# %%
import json
from pathlib import Path

from matplotlib.figure import Figure

import nonvon
from nonvon.report import headline_rows, paradigm_colour

try:  # Jupyter draws tables (_repr_html_) and figures
    from IPython.display import display
except ImportError:  # a plain script: print the text form where it is short

    def display(obj):
        text = obj.to_string() if hasattr(obj, "to_string") else repr(obj)  # a DataFrame's
        print(text if len(text) < 2000 else f"<{type(obj).__name__}: a table in Jupyter>")


OUT = Path("notebook-results")  # the results folder, beside where this runs

# %% [markdown]
# ## Run the comparison
#
# `quick=True` gives each simulator a small budget (a few epochs). Every cell (task,
# simulator, seed) is kept in `notebook-results/cache/`: run this cell again and nothing is
# trained again. The folder gets `results.json` and `results.csv`; `report=False` leaves the
# report out here (it takes longer than the training), and `nonvon report notebook-results`
# writes it from the folder at any time: `report.md`, `report.html` and the figures as PNG,
# SVG and PDF, as `nonvon compare --out` does.

# %%
outcome = nonvon.compare(["digits"], ["gpu-mlp", "hdc-projection"], quick=True, out_dir=OUT,
                         report=False, progress=False, log=lambda message: None)
print(f"{outcome.computed} cell(s) trained now, {outcome.cached} reused from {OUT / 'cache'}")

# %% [markdown]
# ## One result
#
# A `Result` is one cell's accuracy and counted operations (its ledger). Priced on a preset
# it has an energy per inference; in Jupyter it shows as a table.

# %%
reg = nonvon.registry()
mlp = next(r for r in outcome.results if r.simulator == "gpu-mlp")
on_7nm = mlp.priced(reg.preset("cmos-7nm"))
display(on_7nm)
print(f"gpu-mlp on cmos-7nm: {on_7nm.accuracy:.1%}, {on_7nm.energy.energy_j:.3g} J per inference")

# %% [markdown]
# ## The whole results folder
#
# `ResultsTable.load` reads a results folder (this one, or any written by `nonvon compare`
# or `nonvon sweep`): one row per (task, simulator, seed, preset). `to_pandas()` gives a
# DataFrame (pandas is optional: nonvon does not need it).

# %%
table = nonvon.ResultsTable.load(OUT)
display(table)
try:
    frame = table.to_pandas()
except nonvon.ConfigError as e:
    print(f"no DataFrame here: {e}")
else:
    display(frame.pivot_table(index="preset", columns="simulator",
                              values="energy_per_inference_j"))

# %% [markdown]
# ## A figure of your own
#
# Energy per inference of each simulator on each preset, drawn from the rows, with each
# preset's boundary (core, chip or system: what the figure includes) in its label. The
# report's own figures are `nonvon report`'s.

# %%
rows = [r for r in table if r["kind"] == "modelled"]
fig = Figure(figsize=(7, 3.5), layout="constrained")
ax = fig.subplots()
labels = [f"{r['simulator']} on {r['preset']} ({r['boundary']})" for r in rows]
ax.barh(labels, [r["energy_per_inference_j"] for r in rows],
        color=[paradigm_colour(r["paradigm"]) for r in rows])
ax.set_xscale("log")
ax.set_xlabel("modelled energy per inference (J)")
ax.set_title("digits, quick budget")
fig.savefig(OUT / "energy_by_preset.png", dpi=100)
display(fig)

# %% [markdown]
# ## In one line
#
# The report's headline: each simulator at the chip boundary, priced on the device that
# stands for its paradigm (rows at different boundaries are never ranked together).

# %%
summary = {r["simulator"]: {"preset": r["preset"], "accuracy": round(r["accuracy"], 4),
                            "energy_per_inference_j": r["energy_per_inference_j"]}
           for r in headline_rows(table.rows, "chip")}
print(json.dumps({"task": "digits", "out": str(OUT), "chip_boundary": summary}))
