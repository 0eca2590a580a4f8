"""Does training look-ahead embeddings for Qwen2.5-Coder-1.5B fit in 30 minutes here?

    make models-extra models-extra-1.5b
    python tools/step_time.py [--models qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct]

For each model (bfloat16, this machine's threads): the load time, the self-distillation
rate (windows per second, the default recipe's ``self-mixed`` data) and the time of one
optimiser step of the default recipe (soft targets, deep look-ahead, L = 4, batch 8 x 128
tokens, 16 insertion blocks), measured over a few steps after one warm-up step. From these
it projects the minutes of the shipped budget (1024 distilled windows + 150 steps) and of
the reduced budget used for Qwen 0.5B (384 windows + 100 steps), against 30 minutes.
Writes results/ablation/step_time.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from pass_ref import load_model
from pass_ref.training.corpora import load_corpus, tokenize_windows
from pass_ref.training.distill import self_distilled_windows
from pass_ref.training.train import TrainConfig, train_lookahead

ROOT = Path(__file__).resolve().parents[1]

BUDGETS = {"shipped (1024 windows, 150 steps)": (1024, 150), "reduced (384 windows, 100 steps)": (384, 100)}
LIMIT_MIN = 30.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--steps", type=int, default=3, help="timed optimiser steps (after one warm-up step)")
    parser.add_argument("--windows", type=int, default=16, help="windows self-distilled for the rate")
    parser.add_argument("--out", default=str(ROOT / "results" / "ablation" / "step_time.json"))
    args = parser.parse_args(argv)
    rows = {}
    for name in args.models.split(","):
        tick = time.perf_counter()
        model, tokenizer = load_model(name, dtype=torch.bfloat16)
        load_s = time.perf_counter() - tick
        windows = tokenize_windows(tokenizer, load_corpus("code", "train"), 128)
        tick = time.perf_counter()
        distilled = self_distilled_windows(model, windows, "self-mixed", num_windows=args.windows, progress=False)
        s_per_window = (time.perf_counter() - tick) / args.windows
        step_s = []
        for steps in (1, 1 + args.steps):  # the difference removes set-up and the warm-up step
            config = TrainConfig(num_lookahead=4, steps=steps, warmup=1, checkpoint_every=10**6)
            tick = time.perf_counter()
            train_lookahead(model, tokenizer, windows, config, distilled=distilled, progress=False)
            step_s.append(time.perf_counter() - tick)
        per_step = (step_s[1] - step_s[0]) / args.steps
        projected = {label: round((w * s_per_window + n * per_step) / 60, 1) for label, (w, n) in BUDGETS.items()}
        rows[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "load_s": round(load_s, 1),
            "distill_s_per_window": round(s_per_window, 3),
            "step_s": round(per_step, 2),
            "projected_minutes": projected,
            "fits_30_min": {label: m <= LIMIT_MIN for label, m in projected.items()},
        }
        print(f"{name}: {rows[name]['parameters'] / 1e6:.0f} M params, load {load_s:.0f} s, "
              f"distill {s_per_window:.2f} s/window, step {per_step:.1f} s -> {projected}", flush=True)
        del model
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": "python tools/step_time.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "threads": torch.get_num_threads(), "limit_minutes": LIMIT_MIN, "rows": rows}
    out.write_text(json.dumps(result, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
