"""Tokens per call of one-call PaSS against the paper's two-call loop (greedy, held-out code).

    python tools/fused_gain.py                  # SmolLM2-135M, both shipped recipes (~4 min)
    python tools/fused_gain.py --qwen           # Qwen2.5-Coder-0.5B instead (after `make models-extra`; ~12 min)

With E[a] accepted drafts per iteration, two-call PaSS makes (2 + E[a]) / 2 tokens per
call and one-call PaSS 1 + E[a]: a ratio of 2 (1 + E[a]) / (2 + E[a]). This script
measures both loops on the same prompts (float32, so both give the autoregressive tokens)
and compares the measured ratio with that prediction. Writes results/bench/fused_gain-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pass_ref import LookaheadEmbeddings, load_lookahead, load_model, pass_generate
from pass_ref.experiments.doctor import machine_features
from pass_ref.training.corpora import heldout_prompts

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "results" / "ablation" / "scale_vectors"


def measure(model, lookahead, prompts, max_new_tokens: int) -> dict:
    """Both loops on every prompt, greedy; tokens per call, E[a] and the two ratios."""
    totals = {"two": [0, 0, 0, 0], "one": [0, 0, 0, 0]}  # tokens, calls, accepted drafts, iterations with drafts
    same = True
    for ids in prompts:
        runs = {name: pass_generate(model, lookahead, ids, max_new_tokens=max_new_tokens, fused=(name == "one"), trace=True)
                for name in totals}
        same &= runs["two"].new_tokens.tolist() == runs["one"].new_tokens.tolist()
        for name, out in runs.items():
            t = totals[name]
            t[0] += out.stats.new_tokens
            t[1] += out.stats.model_calls
            t[2] += sum(r.num_accepted for r in out.trace)
            t[3] += sum(1 for r in out.trace if r.draft_tokens)
    two_tpc, one_tpc = totals["two"][0] / totals["two"][1], totals["one"][0] / totals["one"][1]
    a = totals["two"][2] / max(totals["two"][3], 1)  # accepted drafts per iteration of the paper's loop
    return {"two_call_tokens_per_call": two_tpc, "one_call_tokens_per_call": one_tpc, "accepted_per_iteration": a,
            "measured_ratio": one_tpc / two_tpc, "predicted_ratio": 2 * (1 + a) / (2 + a), "same_tokens": same}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--qwen", action="store_true", help="Qwen2.5-Coder-0.5B-Instruct (opt-in model) instead of SmolLM2")
    parser.add_argument("--out", default=None, help="default: results/bench/fused_gain-<model>.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    models = [("qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder-0.5B-Instruct")] if args.qwen else [(None, "SmolLM2-135M-Instruct")]
    out = Path(args.out or ROOT / "results" / "bench" / f"fused_gain-{models[0][1]}.json")
    for name, label in models:
        model, tokenizer = load_model(name, dtype=torch.float32)
        prompts = heldout_prompts(tokenizer, "code", args.prompts, 32, seed=0)
        if name is None:  # the shipped sets
            sets = {f"{r} recipe, L = 4 (shipped)": load_lookahead("code", 4, recipe=r, model=model) for r in ("paper", "extended")}
        else:  # the vectors of the scale experiment (tools/scale.py)
            sets = {f"{r} recipe, L = 4": LookaheadEmbeddings.from_pretrained(SCALE / f"{label}-{d}", model=model)
                    for r, d in (("paper", "paper"), ("extended", "default"))}
        for recipe, lookahead in sets.items():
            row = {"model": label, "set": recipe, **measure(model, lookahead, prompts, args.max_new_tokens)}
            rows.append(row)
            print(
                f"{label}, {recipe}: two-call {row['two_call_tokens_per_call']:.3f}, one-call {row['one_call_tokens_per_call']:.3f} "
                f"tokens/call; ratio {row['measured_ratio']:.3f} (predicted {row['predicted_ratio']:.3f}); same tokens: {row['same_tokens']}",  # noqa: E501 (a table row)
                flush=True,
            )
        del model
    payload = {
        "command": "python tools/fused_gain.py" + (" --qwen" if args.qwen else ""),
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "dtype": "float32",
        "machine": machine_features("cpu"),
        "rows": rows,
        "minutes": round((time.perf_counter() - start) / 60, 2),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
