"""vLLM with and without PaSS drafting on the same prompts, in one run: tokens/s and mean acceptance length.

    make bench-vllm                                   # SmolLM2-135M, float32, K = 4
    .venv-vllm/bin/python tools/vllm_bench.py --model qwen0.5b --dtype bfloat16 --out qwen_run.json

Routes: vLLM plain, vLLM ngram (prompt lookup), the shared-vector set as vLLM's draft_model with
parallel_drafting, and the distinct-vector set through pass_ref's custom_class proposer. Each route
runs in its own process (`python -m pass_ref.serving.engine`): vLLM starts an engine per route, so
startup (about 1.5 minutes on 2 cores) is reported apart and never timed. With --rounds 2 the routes
run twice, the second time in reverse order, and the median per route is kept (the machine drifts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("plain", "ngram", "parallel", "custom")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from pass_ref.serving.engine import asset_folders

    MODELS = asset_folders(ROOT)
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="prompts per generate call (default: all in one batch)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from pass_ref.experiments.doctor import machine_features

    base, draft, distinct = MODELS[args.model]
    runs = {route: [] for route in ROUTES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for route in ROUTES if r % 2 == 0 else ROUTES[::-1]:
                out = Path(tmp) / f"{route}-{r}.json"
                subprocess.run([sys.executable, "-m", "pass_ref.serving.engine", route, str(base), "--draft", str(draft),
                                "--lookahead", str(distinct), "--k", str(args.k), "--prompts", str(args.prompts),
                                "--max-tokens", str(args.max_tokens), "--dtype", args.dtype, "--out", str(out),
                                *(["--batch", str(args.batch)] if args.batch else [])],
                               check=True, cwd=ROOT)
                runs[route].append(json.loads(out.read_text()))
    plain = statistics.median(r["tokens_per_s"] for r in runs["plain"])
    rows = []
    for route, results in runs.items():
        tps = statistics.median(r["tokens_per_s"] for r in results)
        rows.append({
            "route": route, "tokens_per_s": round(tps, 2), "vs_plain": round(tps / plain, 3),
            "mean_acceptance_length": round(statistics.median(r["mean_acceptance_length"] for r in results), 3),
            "acceptance_per_position": [round(a, 3) for a in results[0]["acceptance_per_position"]],
            "startup_s": [r["startup_s"] for r in results], "same_tokens_as_plain": all(
                r["tokens"] == runs["plain"][0]["tokens"] for r in results) if args.dtype == "float32" else None,
        })
    record = {
        "command": "python tools/vllm_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model, "base": str(base.relative_to(ROOT)) if base.is_relative_to(ROOT) else str(base),
        "distinct_set": str(distinct.relative_to(ROOT)), "dtype": args.dtype, "k": args.k, "prompts": args.prompts,
        "max_tokens": args.max_tokens, "rounds": args.rounds, "batch": args.batch or args.prompts,
        "machine": machine_features(), "rows": rows,
        "vllm": __import__("vllm").__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{'route':<10}{'tokens/s':>10}{'x plain':>9}{'mean acceptance length':>24}")
    for row in rows:
        print(f"{row['route']:<10}{row['tokens_per_s']:>10.1f}{row['vs_plain']:>8.2f}x{row['mean_acceptance_length']:>24.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
