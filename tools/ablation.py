"""What raises acceptance? One row per training option, same budget, same evaluation.

    python tools/ablation.py                       # every row (about 75 min on 2 cores)
    python tools/ablation.py --rows soft,deep      # some rows; results are merged into the JSON

Every row trains L = 4 code look-ahead vectors with the shipped budget (150 steps, batch 8,
16 blocks per 128-token window, lr 0.01, bfloat16) and changes one thing at a time
against the paper's recipe. Self-distilled data is generated once per mode (its minutes
are added to the row's training minutes). Evaluation, the same for every row:
  - held-out code, 10 prompts x 64 tokens: acceptance LA_1..4 and tokens per call, greedy
    and T = 0.8 top-k 10;
  - the same greedy figures at steps 50 and 100 (acceptance against training length);
  - wall clock on 4 HumanEval prompts x 128 tokens, greedy, interleaved: PaSS vs our
    autoregressive loop vs HF generate (medians of paired ratios).
Writes results/ablation/ablation.json and results/ablation/table.md; vectors in runs/ablation/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pass_ref import LookaheadEmbeddings, load_model
from pass_ref.experiments.bench_setup import benchmark
from pass_ref.experiments.evaluation import measure_acceptance
from pass_ref.experiments.results_doc import ablation_table
from pass_ref.training.corpora import heldout_prompts, load_corpus, tokenize_windows
from pass_ref.training.distill import self_distilled_windows
from pass_ref.training.train import TrainConfig, train_lookahead

ROOT = Path(__file__).resolve().parents[1]

# Each row: the options that differ from the paper's recipe (``docs/paper.md``; mean-embedding start).
ROWS = {
    "paper": {},
    "soft": {"targets": "soft"},
    "self-greedy": {"data": "self-greedy"},
    "self-mixed+soft": {"data": "self-mixed", "targets": "soft"},
    "deep+self-mixed+soft": {"data": "self-mixed", "targets": "soft", "deep": True},
    "frequent-init": {"init": "frequent"},
}
BASE = dict(num_lookahead=4, steps=150, batch_size=8, lr=0.01, warmup=30, seq_len=128, blocks_per_sequence=16, seed=0, checkpoint_every=50,
            targets="data", data="corpus", deep=False, init="mean")  # the paper's recipe, our budget


def evaluate(model, tokenizer, la, prompts) -> dict:
    out = {}
    for name, kwargs in (("greedy", {}), ("T0.8", dict(temperature=0.8, top_k=10))):
        r = measure_acceptance(model, la, prompts, max_new_tokens=64, seed=0, **kwargs)
        out[name] = {"acceptance": [round(a, 4) for a in r.acceptance], "tokens_per_call": round(r.tokens_per_call, 4)}
    return out


def wall_clock(model, tokenizer, la) -> dict:
    result = benchmark(model, tokenizer, task="humaneval", prompts=4, max_new_tokens=128, lookaheads=[4], temperatures=[0.0],
                       methods=["ar", "hf", "pass"], trained={4: la}, latency=False, progress=False)
    row = next(r for r in result.rows if r["method"] == "pass")
    return {"speedup_vs_ar": round(row["speedup_vs_ar"], 4), "speedup_vs_hf": round(row["speedup_vs_hf"], 4),
            "tokens_per_call": round(row["tokens_per_call"], 4), "same_as_ar": row["same_as_ar"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--out", default=str(ROOT / "results" / "ablation"))
    parser.add_argument("--runs", default=str(ROOT / "runs" / "ablation"))
    parser.add_argument("--steps", type=int, default=BASE["steps"])
    parser.add_argument("--reuse", action="store_true", help="evaluate runs/ablation/<row>/final if it exists instead of retraining")
    args = parser.parse_args(argv)
    rows = args.rows.split(",")
    unknown = set(rows) - set(ROWS)
    if unknown:
        raise SystemExit(f"unknown rows {sorted(unknown)}; choose from {list(ROWS)}")
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    results_path = out / "ablation.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"rows": {}}
    results["command"] = "python tools/ablation.py"
    model, tokenizer = load_model(dtype=torch.bfloat16)
    windows = tokenize_windows(tokenizer, load_corpus("code", "train"), BASE["seq_len"])
    prompts = heldout_prompts(tokenizer, "code", 10, seed=0)
    distilled: dict[str, tuple[torch.Tensor, float]] = {}
    for name in rows:
        options = ROWS[name]
        config = TrainConfig(**{**BASE, "steps": args.steps, **options})
        print(f"== {name}: {options or 'the paper recipe'}", flush=True)
        extra_minutes = 0.0
        data = None
        if config.data != "corpus":
            if config.data not in distilled:
                tick = time.perf_counter()
                with torch.no_grad():
                    gen = self_distilled_windows(model, windows, config.data, num_windows=config.distill_windows,
                                                 prompt_len=config.distill_prompt_len, seed=config.seed)
                distilled[config.data] = (gen, (time.perf_counter() - tick) / 60)
            data, extra_minutes = distilled[config.data]
        snaps = runs / name / "snapshots"
        if args.reuse and (runs / name / "final").exists():
            la = LookaheadEmbeddings.from_pretrained(runs / name / "final", model=model)
            minutes = la.metadata.get("train_minutes", float("nan"))
            final_loss = la.metadata.get("final_train_loss", float("nan"))
        else:
            shutil.rmtree(runs / name, ignore_errors=True)
            tick = time.perf_counter()
            la, history = train_lookahead(model, tokenizer, windows, config, distilled=data, snapshots=snaps)
            minutes = (time.perf_counter() - tick) / 60 + extra_minutes
            la.metadata["train_minutes"] = round(minutes, 2)
            la.save_pretrained(runs / name / "final", overwrite=True)
            final_loss = history.loss[-1]
        row = {
            "options": options,
            "recipe": asdict(config),
            "parameters": la.num_parameters,
            "train_minutes": round(minutes, 2),
            "distill_minutes": round(extra_minutes, 2),
            "final_train_loss": round(final_loss, 4),
            "heldout_code": evaluate(model, tokenizer, la, prompts),
            "by_step": {},
        }
        for step_dir in sorted(snaps.glob("step*"), key=lambda p: int(p.name[4:])):
            snap = LookaheadEmbeddings.from_pretrained(step_dir, model=model)
            r = measure_acceptance(model, snap, prompts, max_new_tokens=64, seed=0)
            row["by_step"][step_dir.name[4:]] = {
                "acceptance": [round(a, 4) for a in r.acceptance],
                "tokens_per_call": round(r.tokens_per_call, 4),
            }
        row["humaneval_wall_clock"] = wall_clock(model, tokenizer, la)
        results["rows"][name] = row
        results_path.write_text(json.dumps(results, indent=1))
        g = row["heldout_code"]["greedy"]
        print(
            f"   {minutes:.1f} min; greedy LA {g['acceptance']} -> {g['tokens_per_call']} tokens/call; "
            f"HumanEval wall clock {row['humaneval_wall_clock']}",
            flush=True,
        )
    (out / "table.md").write_text(ablation_table(results) + "\n")
    print(ablation_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
