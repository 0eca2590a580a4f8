"""One shared look-ahead vector against L distinct ones (and the paper's [UNK] baseline): how much of PaSS does
the variant vLLM's parallel drafting can serve keep?

    python tools/shared_ablation.py                                   # SmolLM2-135M, code, L = 4
    python tools/shared_ablation.py --model qwen2.5-coder-0.5b-instruct --shared results/serving/sets/qwen0.5b-shared-code-L4 \
        --distinct results/serving/sets/qwen0.5b-distinct-code-L4-50steps

The distinct set is the shipped paper-recipe code set for the model, or ``--distinct``: Qwen's shipped paper set is
now trained until its held-out loss stops improving, so the Qwen comparison keeps the 50-step distinct set the shared
set matches (same recipe, same steps, `--shared` the only difference; each set's command is in its metadata).
Greedy two-call PaSS on held-out code prompts and on HumanEval prompts: acceptance per position, accepted drafts per
iteration E[a] and tokens per call, into results/serving/shared_ablation[_MODEL].json (rendered in docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    import pass_ref
    from pass_ref.experiments.data import humaneval_prompts
    from pass_ref.experiments.doctor import machine_features
    from pass_ref.experiments.evaluation import compare_lookaheads
    from pass_ref.training.corpora import heldout_prompts

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: SmolLM2-135M-Instruct")
    parser.add_argument("--shared", default=str(ROOT / "results/serving/sets/smollm2-shared-code-L4"))
    parser.add_argument("--distinct", default=None, help="the distinct set (default: the model's shipped paper-recipe set)")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    model, tokenizer = pass_ref.load_model(args.model, dtype=torch.float32)
    shared = pass_ref.LookaheadEmbeddings.from_pretrained(args.shared, model=model)
    if not shared.shared:
        raise SystemExit(f"{args.shared} is not a shared-vector set")
    L = shared.num_lookahead
    distinct = (pass_ref.load_lookahead("code", L, model=model) if args.distinct is None
                else pass_ref.LookaheadEmbeddings.from_pretrained(args.distinct, model=model))
    if distinct.shared or distinct.deep or distinct.num_lookahead != L:
        raise SystemExit(f"the distinct set must hold L = {L} distinct input vectors")
    candidates = {"distinct (paper recipe)": distinct, "shared (same recipe, --shared)": shared,
                  "[UNK] (untrained)": pass_ref.LookaheadEmbeddings.from_token(model, L)}
    prompt_sets = {"held-out code": heldout_prompts(tokenizer, "code", args.prompts, seed=0),
                   "HumanEval": [tokenizer(p, return_tensors="pt").input_ids for p in humaneval_prompts(args.prompts)]}
    rows = compare_lookaheads(model, candidates, prompt_sets, max_new_tokens=args.new_tokens)
    out = []
    for r in rows:
        out.append({"set": r.name, "prompts": r.prompts, "acceptance": [round(a, 4) for a in r.acceptance],
                    "accepted_per_iteration": round(sum(r.acceptance), 4), "tokens_per_call": round(r.tokens_per_call, 4)})
    kept = {}
    for prompts in prompt_sets:
        by = {r["set"]: r for r in out if r["prompts"] == prompts}
        distinct = by["distinct (paper recipe)"]["accepted_per_iteration"]
        same = by["shared (same recipe, --shared)"]["accepted_per_iteration"]
        kept[prompts] = round(same / distinct, 3) if distinct else None
    record = {"command": "python tools/shared_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": str(model.config.name_or_path), "L": L, "greedy": True, "new_tokens": args.new_tokens,
              "prompts_per_set": args.prompts, "shared_set": str(Path(args.shared).resolve().relative_to(ROOT)),
              "shared_recipe": shared.metadata.get("command"),
              "distinct_set": "shipped paper set" if args.distinct is None else str(Path(args.distinct).resolve().relative_to(ROOT)),
              "distinct_steps": distinct.metadata.get("trained_steps", distinct.metadata.get("steps_trained")),
              "rows": out, "shared_keeps": kept, "machine": machine_features()}
    name = "shared_ablation.json" if args.model is None else f"shared_ablation_{Path(str(args.model)).name}.json"
    path = Path(args.out) if args.out else ROOT / "results" / "serving" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    for r in out:
        print(f"{r['prompts']:<15}{r['set']:<32}{str(r['acceptance']):<36}E[a] {r['accepted_per_iteration']:.3f}  "
              f"tokens/call {r['tokens_per_call']:.3f}")
    print("shared keeps this share of the distinct set's accepted drafts per iteration:", kept)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
