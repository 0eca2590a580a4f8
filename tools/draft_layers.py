"""Can the self-speculative draft model (the target's first layers) be a fair baseline?

    python tools/draft_layers.py            # about 5 minutes on 2 cores; writes results/bench/draft_layers.json

No small model with SmolLM2's tokenizer is available offline, so the draft-model baseline
drafts with the target's own first d layers (``truncated_draft_model``), untrained. For
each d this measures greedy acceptance on HumanEval prompts (K = 4 drafts, float32, so the
tokens equal autoregressive decoding) and t(1) of the draft, and predicts the per-token
speed-up with the latency model: (1 + E[a]) t(1) / (t(K + 1) + K t_draft(1)).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pass_ref import load_model, speculative_generate, truncated_draft_model
from pass_ref.experiments.data import humaneval_prompts
from pass_ref.experiments.doctor import machine_features
from pass_ref.experiments.latency import measure_forward_latency, predicted_speculative_speedup

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="4,8,12,16,20,24,28")
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--drafts", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "draft_layers.json"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model, tokenizer = load_model(dtype=torch.float32)
    prompts = [tokenizer(p, return_tensors="pt").input_ids for p in humaneval_prompts(args.prompts)]
    context = sorted(p.shape[1] for p in prompts)[len(prompts) // 2] + args.max_new_tokens // 2
    target_curve = measure_forward_latency(model, [1, args.drafts + 1], context=context, repeats=5)
    rows = []
    for d in [int(x) for x in args.layers.split(",")]:
        draft = truncated_draft_model(model, d)
        draft_s = measure_forward_latency(draft, [1], context=context, repeats=5).t(1)
        accepted = drafted = tokens = calls = 0
        acceptance_counts = [0] * args.drafts
        blocks = 0
        for ids in prompts:
            out = speculative_generate(model, draft, ids, num_draft_tokens=args.drafts, max_new_tokens=args.max_new_tokens)
            tokens += out.stats.new_tokens
            calls += out.stats.model_calls
            blocks += out.stats.drafted[0] if out.stats.drafted else 0
            for i, a in enumerate(out.stats.accepted):
                acceptance_counts[i] += a
            accepted += sum(out.stats.accepted)
            drafted += sum(out.stats.drafted)
        acceptance = [a / max(blocks, 1) for a in acceptance_counts]
        row = {
            "layers": d,
            "draft_t1_over_target_t1": draft_s / target_curve.t(1),
            "acceptance": acceptance,
            "tokens_per_call": tokens / max(calls, 1),
            "predicted_speedup": predicted_speculative_speedup(target_curve, acceptance, draft_s),
        }
        rows.append(row)
        print(f"d = {d:2d}: draft t(1) = {row['draft_t1_over_target_t1']:.2f} x target's, acceptance "
              f"{' '.join(f'{a:.2f}' for a in acceptance)}, predicted {row['predicted_speedup']:.2f}x", flush=True)
    best = max(rows, key=lambda r: r["predicted_speedup"])
    payload = {
        "command": "python tools/draft_layers.py",
        "dtype": "float32",
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "drafts": args.drafts,
        "target_layers": model.config.num_hidden_layers,
        "target_t1_s": target_curve.t(1),
        "target_tK1_over_t1": target_curve.ratio(args.drafts + 1),
        "machine": machine_features("cpu"),
        "rows": rows,
        "best_layers": best["layers"],
        "minutes": round((time.perf_counter() - start) / 60, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(f"best: d = {best['layers']} ({best['predicted_speedup']:.2f}x predicted); written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
