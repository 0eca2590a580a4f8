"""What training buys: trained vs [UNK] vs random look-ahead embeddings (run by `make train`).

    .venv/bin/python tools/evaluate_lookahead.py [--prompts 10] [--max-new-tokens 48]

Default model in bfloat16, PaSS decoding with EOS ignored. Writes
``results/trained/evaluation.json`` (every row) and prints markdown tables:

1. L = 4, code embeddings: held-out code prompts and HumanEval prompts;
   text embeddings: held-out text prompts. Greedy and T = 0.2 / 0.5 / 0.8 with top-k 10.
2. Tokens per model call vs L in {2, 4, 6, 8}, greedy, trained vs [UNK], both domains.

Held-out prompts are 32-token windows of held-out documents (seed 2, distinct from the
prompts used to choose and describe the checkpoints); HumanEval prompts are the first N
problems' prompts, whole.
"""

import argparse
import json
import sys
import time
from dataclasses import asdict

import torch

import pass_ref
from pass_ref import LookaheadEmbeddings
from pass_ref.experiments.data import humaneval_prompts
from pass_ref.experiments.evaluation import compare_lookaheads, format_table
from pass_ref.trained import RESULTS_DIR, SHIPPED_L, load_lookahead
from pass_ref.training.corpora import heldout_prompts

TEMPERATURES = (0.0, 0.2, 0.5, 0.8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--recipe", choices=["paper", "extended"], default=None, help="default: both, one file each")
    parser.add_argument("--out", default=None, help="default: results/trained/evaluation[_paper].json")
    args = parser.parse_args()
    for recipe in [args.recipe] if args.recipe else ["paper", "extended"]:
        out = args.out or str(RESULTS_DIR / ("evaluation.json" if recipe == "extended" else "evaluation_paper.json"))
        evaluate(args, recipe, out)
    return 0


def evaluate(args, recipe: str, out: str) -> None:
    """Every table for the shipped sets of one recipe, written to ``out``."""
    start = time.perf_counter()
    model, tokenizer = pass_ref.load_model(dtype=torch.bfloat16)
    prompts = {
        "held-out code": heldout_prompts(tokenizer, "code", args.prompts, seed=2),
        "HumanEval": [tokenizer(p, return_tensors="pt").input_ids[0] for p in humaneval_prompts(args.prompts)],
        "held-out text": heldout_prompts(tokenizer, "text", args.prompts, seed=2),
    }
    common = dict(top_k=10, max_new_tokens=args.max_new_tokens)

    def candidates(domain: str, L: int, controls: bool = True) -> dict:
        sets = {"trained": load_lookahead(domain, L, recipe=recipe, model=model), "[UNK]": LookaheadEmbeddings.from_token(model, L)}
        if controls:
            sets["random"] = LookaheadEmbeddings.from_random(model, L, seed=0)
        return sets

    by_temperature = compare_lookaheads(
        model, candidates("code", 4), {k: prompts[k] for k in ("held-out code", "HumanEval")}, temperatures=TEMPERATURES, **common
    )
    by_temperature += compare_lookaheads(
        model, candidates("text", 4), {"held-out text": prompts["held-out text"]}, temperatures=TEMPERATURES, **common
    )
    print(format_table(by_temperature), flush=True)
    by_L = []
    for domain in ("code", "text"):
        for L in SHIPPED_L:
            by_L += compare_lookaheads(
                model, candidates(domain, L, controls=False), {f"held-out {domain}": prompts[f"held-out {domain}"]}, **common
            )
    print(format_table(by_L), flush=True)
    minutes = (time.perf_counter() - start) / 60
    result = {
        "command": "python tools/evaluate_lookahead.py " + " ".join(sys.argv[1:]),
        "recipe": recipe,
        "dtype": "bfloat16",
        "prompts_per_set": args.prompts,
        "new_tokens": args.max_new_tokens,
        "minutes": round(minutes, 1),
        "by_temperature": [asdict(r) for r in by_temperature],
        "by_L": [asdict(r) for r in by_L],
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {out} in {minutes:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
