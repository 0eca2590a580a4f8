"""Reproduce the paper's Table 1 (left and right) and the HumanEval speed headline on this machine.

    python tools/reproduce_tables.py --size quick     # `make bench-quick`, under 10 minutes on 2 cores
    python tools/reproduce_tables.py --size medium    # about 35 min (not committed yet)

Sizes (the paper: 200 prompts x 512 tokens, which is ~27 h of CPU here per table):
    quick:  3 prompts x 96 tokens per setting, 3 HumanEval prompts
    medium: 6 prompts x 160 tokens per setting, 10 HumanEval prompts
    full:   200 prompts x 512 tokens (the paper's size; not run here)

Three benchmarks in one process on the default model (bfloat16, CPU), each interleaved:
  table1_left   held-out code and text, T in {0.2, 0.5, 0.8}, top-k 10, L = 4:
                our AR, HF generate, [UNK] look-ahead, trained PaSS
  table1_right  held-out code, T = 0.8, L in {2, 4, 6, 8}: our AR, HF generate, trained PaSS
  headline      HumanEval prompts, greedy, L = 4: every method
Writes results/bench/<size>/<name>/ and results/bench/<size>/TABLES.md (ours beside the paper's).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pass_ref import load_model
from pass_ref.experiments.bench import format_markdown
from pass_ref.experiments.bench_setup import benchmark

ROOT = Path(__file__).resolve().parents[1]

SIZES = {
    "quick": dict(prompts=3, tokens=96, humaneval=3),
    "medium": dict(prompts=6, tokens=160, humaneval=10),
    "full": dict(prompts=200, tokens=512, humaneval=164),
}

# The paper (docs/paper.md), LLaMA-1 7B: seconds for 512 tokens.
PAPER_LEFT = {
    ("code", 0.8): (12.52, 12.25, 9.79), ("code", 0.5): (12.69, 12.43, 9.46), ("code", 0.2): (12.72, 12.26, 8.96),
    ("text", 0.8): (12.45, 12.30, 10.23), ("text", 0.5): (12.30, 12.16, 9.78), ("text", 0.2): (12.55, 11.88, 9.43),
}
PAPER_RIGHT = {2: 10.03, 4: 9.79, 6: 9.66, 8: 9.94}  # The Stack, T = 0.8; AR 12.52 s
PAPER_HUMANEVAL_GREEDYISH = 10.52 / 7.17  # pass@1 at T = 0.1: 1.47x


def _row(rows, method, T, L=None):
    for r in rows:
        if r["method"] == method and r["temperature"] == T and (L is None or r["L"] == L):
            return r
    return None


def tables_markdown(results: dict, size: str) -> str:
    s = SIZES[size]
    lines = [
        f"# Paper tables reproduced on this machine ({size} size: {s['prompts']} prompts x {s['tokens']} tokens per "
        f"setting; HumanEval {s['humaneval']} prompts x {s['tokens']} tokens)",
        "",
        "Ratios only: the paper's absolute seconds (LLaMA-1 7B, hardware not stated) are not comparable with ours "
        "(SmolLM2-135M, bfloat16, 2 CPU cores). Our speed-ups are medians of per-prompt paired ratios.",
        "",
        "## Table 1, left: speed-up of PaSS (L = 4) over autoregressive decoding",
        "",
        "| prompts | T | paper [UNK] | paper PaSS | ours [UNK] | ours PaSS | ours PaSS vs HF generate | ours tokens/call | ours LA_1..4 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in ("code", "text"):
        rows = results.get(f"table1_left_{task}", [])
        for T in (0.2, 0.5, 0.8):
            ar, unk, pas = PAPER_LEFT[(task, T)]
            ou, op = _row(rows, "pass-unk", T), _row(rows, "pass", T)
            if ou is None or op is None:
                continue
            lines.append(
                f"| held-out {task} | {T:g} | {ar / unk:.2f}× | {ar / pas:.2f}× | {ou['speedup_vs_ar']:.2f}× | "
                f"{op['speedup_vs_ar']:.2f}× | {op['speedup_vs_hf']:.2f}× | {op['tokens_per_call']:.3f} | "
                + " ".join(f"{a:.2f}" for a in op["acceptance"]) + " |"
            )
    lines += [
        "",
        "## Table 1, right: number of look-ahead tokens (code, T = 0.8)",
        "",
        "| L | paper speed-up | ours speed-up | ours tokens/call | ours LA_1..L | predicted (latency model) |",
        "|---|---|---|---|---|---|",
    ]
    rows = results.get("table1_right", [])
    for L, secs in PAPER_RIGHT.items():
        r = _row(rows, "pass", 0.8, L)
        if r is not None:
            pred = f"{r['predicted_speedup']:.2f}×" if r.get("predicted_speedup") else "–"
            lines.append(
                f"| {L} | {12.52 / secs:.2f}× | {r['speedup_vs_ar']:.2f}× | {r['tokens_per_call']:.3f} | "
                + " ".join(f"{a:.2f}" for a in r["acceptance"])
                + f" | {pred} |"
            )
    lines += ["", f"## HumanEval prompts, greedy, L = 4 (paper: PaSS {PAPER_HUMANEVAL_GREEDYISH:.2f}× at T = 0.1)", ""]
    if "headline" in results:
        lines.append(format_markdown(results["headline"]))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--out", default=None, help="default: results/bench/<size>")
    parser.add_argument("--only", default="table1_left,table1_right,headline")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    out = Path(args.out or ROOT / "results" / "bench" / args.size)
    out.mkdir(parents=True, exist_ok=True)
    command = f"python tools/reproduce_tables.py --size {args.size}"
    model, tokenizer = load_model(dtype=torch.bfloat16)
    start = time.perf_counter()
    results: dict = {}
    common = dict(max_new_tokens=size["tokens"], top_k=10, command=command)
    only = args.only.split(",")
    if "table1_left" in only:
        for task in ("code", "text"):
            print(f"== Table 1 left, {task}", flush=True)
            r = benchmark(
                model,
                tokenizer,
                task=task,
                prompts=size["prompts"],
                lookaheads=[4],
                temperatures=[0.2, 0.5, 0.8],
                methods=["ar", "hf", "pass-unk", "pass"],
                out=out / f"table1_left_{task}",
                **common,
            )
            results[f"table1_left_{task}"] = r.rows
    if "table1_right" in only:
        print("== Table 1 right", flush=True)
        r = benchmark(
            model,
            tokenizer,
            task="code",
            prompts=size["prompts"],
            lookaheads=[2, 4, 6, 8],
            temperatures=[0.8],
            methods=["ar", "hf", "pass"],
            out=out / "table1_right",
            **common,
        )
        results["table1_right"] = r.rows
    if "headline" in only:
        print("== HumanEval, greedy", flush=True)
        r = benchmark(
            model,
            tokenizer,
            task="humaneval",
            prompts=size["humaneval"],
            lookaheads=[4],
            temperatures=[0.0],
            out=out / "headline",
            **common,
        )
        results["headline"] = r.rows
    minutes = (time.perf_counter() - start) / 60
    text = tables_markdown(results, args.size) + f"\nCommand: `{command}` ({minutes:.1f} min, {torch.get_num_threads()} threads).\n"
    (out / "TABLES.md").write_text(text, encoding="utf-8")
    (out / "tables.json").write_text(json.dumps({"size": args.size, **size, "minutes": minutes, "results": results}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
