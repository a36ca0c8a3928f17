"""Print the README's headline block from this folder's results.json (run after the study).

    python docs/results/mnist-comparison/headline.py > /tmp/headline.md

The chip-boundary table, the sentence that answers "which paradigm is cheapest at what
accuracy", the spike-rate break-even against the reference simulator, and the system table;
every number comes from results.json, nothing is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

from nonvon.compare import load_rows
from nonvon.report import break_even_rows, cheapest_sentence, format_si, headline_markdown


def break_even_markdown(rows) -> str:
    lines = ["| task | spiking row | accuracy | measured spike rate | break-even rate against the "
             "reference |",
             "|---|---|---|---|---|"]
    for b in break_even_rows(rows):
        be = ("none: its fixed part alone costs more than the reference"
              if b["break_even_rate"] is None else f"{b['break_even_rate']:.4f}")
        lines.append(f"| {b['task']} | {b['simulator']} @ {b['preset']} | {100 * b['accuracy']:.2f}% "
                     f"| {b['spike_rate']:.4f} | {be} (reference {format_si(b['baseline_j'], 'J')} "
                     f"at {100 * b['baseline_accuracy']:.2f}%) |")
    return "\n".join(lines)


def main() -> None:
    rows = load_rows(Path(__file__).parent)
    print(headline_markdown(rows, "chip", compact=True))
    print(f"\n**Which is cheapest, at what accuracy (chip boundary):** {cheapest_sentence(rows, 'chip')}\n")
    print(break_even_markdown(rows))
    print("\nAt the system boundary (a whole GPU board with its idle power, a QPU with its cryostat; "
          "NVML measurements at each simulator's largest measured batch, the others in the report):\n")
    # Small-batch measurements are launch-bound (hundreds of uJ for every network): the report
    # lists them; the README keeps the largest batch beside the modelled rows.
    measured = [r for r in rows if r.get("kind") == "measured"]
    largest = {}
    for r in measured:
        k = (r["task"], r["simulator"])
        largest[k] = max(largest.get(k, 0), r["batch_size"])
    big = [r for r in rows if r.get("kind") != "measured"
           or r["batch_size"] == largest[(r["task"], r["simulator"])]]
    print(headline_markdown(big, "system", compact=True))


if __name__ == "__main__":
    main()
