"""Does a look-ahead set's held-out acceptance carry over to HumanEval, where the benchmark decodes?

    make models-extra
    python tools/humaneval_acceptance.py --model qwen2.5-coder-0.5b-instruct \
        --sets extended,paper,results/ablation/scale_vectors/Qwen2.5-Coder-0.5B-Instruct-default

Each set decodes with PaSS (two calls, all L look-ahead tokens), greedy, bfloat16, EOS ignored,
64 new tokens, on three prompt sets: the first 4 HumanEval prompts (whole; the ones ``bench``
and ``fastest`` time), the next ones up to ``--prompts``, and 10 held-out code prompts (32-token
windows of held-out standard-library files, the ones ``tools/scale.py`` reports). A set is a shipped
recipe's name ("extended", "paper": ``load_lookahead("code", 4, recipe=..., model=...)``) or a
folder saved with ``save_pretrained``. HumanEval is evaluation data only: no set trains on it.
Writes results/ablation/humaneval_acceptance.json (rendered into docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import pass_ref
from pass_ref.experiments.data import humaneval_prompts
from pass_ref.experiments.doctor import machine_features
from pass_ref.experiments.evaluation import compare_lookaheads, format_table
from pass_ref.trained import RECIPES
from pass_ref.training.corpora import heldout_prompts

ROOT = Path(__file__).resolve().parents[1]
TIMED = 4  # the HumanEval prompts bench and fastest time


def load_set(spec: str, model) -> pass_ref.LookaheadEmbeddings:
    """A shipped recipe's code set at L = 4 for ``model``, or the set saved in folder ``spec``."""
    if spec in RECIPES:
        return pass_ref.load_lookahead("code", 4, recipe=spec, model=model)
    path = Path(spec)
    if not path.is_dir():
        raise SystemExit(f"{spec!r} is neither a recipe ({', '.join(RECIPES)}) nor a folder of saved vectors")
    return pass_ref.LookaheadEmbeddings.from_pretrained(path, model=model)


def label(spec: str, la: pass_ref.LookaheadEmbeddings) -> str:
    """The set's name in the table: its recipe, or its folder, with its training steps and prompts."""
    recipe = la.metadata.get("recipe") or {}
    steps = " + ".join(map(str, la.stage_steps()))
    where = f"shipped {spec}" if spec in RECIPES else spec
    kind = ", function prompts last" if recipe.get("prompts") == "functions" else ""
    return f"{where} ({steps} steps{kind})" if steps else where


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct",
                        help="what load_model takes (\"default\": the shipped SmolLM2-135M-Instruct)")
    parser.add_argument("--sets", default="extended,paper", help="comma-separated recipes or folders")
    parser.add_argument("--prompts", type=int, default=24, help="HumanEval prompts (the first N)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "results" / "ablation" / "humaneval_acceptance.json"))
    args = parser.parse_args(argv)
    if args.prompts < TIMED or args.max_new_tokens < 1:
        raise SystemExit(f"--prompts must be >= {TIMED} (the timed prompts) and --max-new-tokens >= 1")
    start = time.perf_counter()
    model, tokenizer = pass_ref.load_model(None if args.model == "default" else args.model, dtype=torch.bfloat16)
    specs = [s.strip() for s in args.sets.split(",") if s.strip()]
    sets = {}
    for spec in specs:
        la = load_set(spec, model)
        sets[label(spec, la)] = la
    humaneval = [tokenizer(p, return_tensors="pt").input_ids[0] for p in humaneval_prompts(args.prompts)]
    prompts = {"HumanEval 1-4 (the timed ones)": humaneval[:TIMED]}
    if args.prompts > TIMED:
        prompts[f"HumanEval {TIMED + 1}-{args.prompts}"] = humaneval[TIMED:]
    prompts["held-out code"] = heldout_prompts(tokenizer, "code", 10, seed=0)
    rows = compare_lookaheads(model, sets, prompts, max_new_tokens=args.max_new_tokens)
    print(format_table(rows), flush=True)
    result = {
        "command": "python tools/humaneval_acceptance.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model,
        "machine": machine_features("cpu"),  # bfloat16 greedy tokens can differ between CPUs' kernels
        "minutes": round((time.perf_counter() - start) / 60, 2),
        "max_new_tokens": args.max_new_tokens,
        "rows": [r.as_dict() for r in rows],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
