"""Overhead of counting ops during inference: nonvon's OpCounter vs torch's FlopCounterMode.

Both count the same network on identical inputs; their MAC counts are asserted
equal (FlopCounterMode reports 2 FLOP per MAC). Prints, as its last line, one
JSON object with the times and the ratio (peer time / nonvon time).

    python benchmarks/op_counting.py --quick
    python benchmarks/op_counting.py --device cuda
"""

from __future__ import annotations

import argparse
import json

import torch
from _timing import best_time  # benchmarks/ is on sys.path when run as a script
from torch.utils.flop_counter import FlopCounterMode

from nonvon.models import cnn
from nonvon.simulators.gpu import OpCounter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    batch, reps = (64, 5) if args.quick else (1024, 20)
    torch.manual_seed(0)
    net = cnn(28, (32, 64), 256, 10).to(args.device).eval()
    x = torch.rand(batch, 28, 28, device=args.device)

    counts = {}

    def with_peer():
        with FlopCounterMode(display=False) as fc, torch.inference_mode():
            net(x)
        counts["peer"] = fc.get_total_flops() // 2

    def with_nonvon():
        with OpCounter(net) as oc, torch.inference_mode():
            net(x)
        counts["nonvon"] = oc.totals["mac_fp32"]

    def plain():
        with torch.inference_mode():
            net(x)

    t_plain = best_time(plain, args.device, reps)
    t_peer = best_time(with_peer, args.device, reps)
    t_ours = best_time(with_nonvon, args.device, reps)
    assert counts["peer"] == counts["nonvon"], counts
    print(json.dumps({"bench": "op_counting", "peer": "torch.utils.flop_counter.FlopCounterMode",
                      "device": args.device, "batch": batch, "macs": counts["nonvon"],
                      "plain_s": t_plain, "peer_s": t_peer, "nonvon_s": t_ours,
                      "ratio": t_peer / t_ours, "nonvon_overhead": t_ours / t_plain - 1}))


if __name__ == "__main__":
    main()
