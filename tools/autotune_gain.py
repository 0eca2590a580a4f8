"""What inductor's GEMM autotuning buys the compiled static path on this machine.

    python tools/autotune_gain.py                       # SmolLM2-135M, float32 and bfloat16, sizes 1 and 5 (~25 min)
    python tools/autotune_gain.py --model qwen2.5-coder-0.5b-instruct --dtypes bfloat16

For each dtype the model is put on the compiled static path twice, every size frozen:
once as ``static_model`` compiles by default, once with ``autotune=True`` (each matmul
timed at compile time as ATen's kernel and as inductor's generated C++ template, the
faster kept). Both copies share the weights. The script checks that both give the same
greedy tokens, then times t(n) of the two in alternating rounds (the order flips every
round) and reports per size the medians and the median of the paired ratios, with t(1)
against the weight-streaming bound (weight bytes over a large copy's bandwidth) and the
compile times. With ``--prefill N`` (default 128) both copies also compile the prompt's call
padded to N (``static_model(prefill_sizes=...)``), and the first HumanEval prompts are timed
the same way against the eager prompt call (the path every decode takes without prefill
sizes). Writes results/bench/autotune_gain-<model>-<cpu kind>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from pass_ref import load_model, static_model
from pass_ref.cache import CachedModel, open_cache
from pass_ref.experiments.bandwidth import memory_bandwidth, weight_bytes
from pass_ref.experiments.bench_setup import task_prompts
from pass_ref.experiments.doctor import machine_features
from pass_ref.experiments.fastest import machine_slug
from pass_ref.experiments.latency import measure_static_latency

ROOT = Path(__file__).resolve().parents[1]


def greedy(fast, prompt: list[int], new_tokens: int) -> list[int]:
    """Greedy tokens of plain one-token decoding on ``fast``'s static path."""
    cached = open_cache(fast)
    with torch.inference_mode():
        tokens = [int(cached.forward(prompt, keep=1)[-1].argmax())]
        for _ in range(new_tokens - 1):
            tokens.append(int(cached.forward(tokens[-1:])[-1].argmax()))
    return tokens


def prompt_seconds(model, prompt: list[int]) -> float:
    """One prompt's call (the LM head on its last row), through ``model``'s static path if it has one, else eagerly."""
    cached = open_cache(model) if getattr(model, "pass_ref_static", None) is not None else CachedModel(model)
    with torch.inference_mode():
        began = time.perf_counter()
        cached.forward(prompt, keep=1)
        return time.perf_counter() - began


def compare(model, sizes, rounds: int, repeats: int, context: int, prefill: int, prompts: list[list[int]]) -> dict:
    """Default and autotuned compiled copies of ``model``: compile seconds, greedy equality, paired t(n) and prompt calls."""
    copies, compile_s = {}, {}
    for name, autotune in (("default", False), ("autotuned", True)):
        began = time.perf_counter()
        copies[name] = static_model(model, sizes=sizes, max_cache_len=max(context + 2 * max(sizes), prefill + 1),
                                    autotune=autotune, prefill_sizes=(prefill,) if prefill else ())
        compile_s[name] = round(time.perf_counter() - began, 1)
    prompt = torch.randint(0, model.config.vocab_size, (context // 2,), generator=torch.Generator().manual_seed(1)).tolist()
    same = greedy(copies["default"], prompt, 16) == greedy(copies["autotuned"], prompt, 16)
    times = {name: {n: [] for n in sizes} for name in copies}
    prompts = [p for p in prompts if len(p) <= prefill]
    calls = {name: {i: [] for i in range(len(prompts))} for name in ("eager", *copies)}
    for r in range(rounds):
        print(f"round {r + 1} of {rounds}", flush=True)
        for name in ("default", "autotuned") if r % 2 == 0 else ("autotuned", "default"):
            curve = measure_static_latency(copies[name], context=context, repeats=repeats, warmup=1)
            for n, seconds in zip(curve.new_tokens, curve.seconds):
                times[name][n].append(seconds)
        for i, prompt in enumerate(prompts):  # the three prompt calls, in an order that rotates every round
            order = ["eager", "default", "autotuned"]
            for name in order[r % 3:] + order[: r % 3]:
                calls[name][i].append(prompt_seconds(model if name == "eager" else copies[name], prompt))
    rows = [{"size": n, "default_ms": 1e3 * statistics.median(times["default"][n]),
             "autotuned_ms": 1e3 * statistics.median(times["autotuned"][n]),
             "paired_ratio": statistics.median(a / d for a, d in zip(times["autotuned"][n], times["default"][n]))}
            for n in sizes]
    prefill_rows = [{"prompt_tokens": len(prompt), **{f"{name}_ms": 1e3 * statistics.median(calls[name][i]) for name in calls},
                     **{f"{name}_over_eager": statistics.median(c / e for c, e in zip(calls[name][i], calls["eager"][i]))
                        for name in copies}}
                    for i, prompt in enumerate(prompts)]
    return {"compile_seconds": compile_s, "same_greedy_tokens": same, "rows": rows, "prefill_rows": prefill_rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model name or path (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--rounds", type=int, default=8, help="alternating timing rounds")
    parser.add_argument("--repeats", type=int, default=5, help="timings per size in a round (median)")
    parser.add_argument("--context", type=int, default=200, help="cached tokens under each timed call")
    parser.add_argument("--prefill", type=int, default=128, help="the prompt's compiled size (0: none)")
    parser.add_argument("--prompts", type=int, default=4, help="HumanEval prompts timed (those of at most --prefill tokens)")
    parser.add_argument("--out", default=None, help="the JSON file (default: results/bench/autotune_gain-<model>-<cpu kind>.json)")
    args = parser.parse_args()
    start, machine = time.perf_counter(), machine_features("cpu")
    bandwidth = memory_bandwidth("cpu")
    results = {}
    for dtype in args.dtypes:
        model, tokenizer = load_model(args.model, dtype=getattr(torch, dtype))
        prompts = task_prompts(tokenizer, "humaneval", args.prompts) if args.prefill else []
        result = compare(model, tuple(args.sizes), args.rounds, args.repeats, args.context, args.prefill, prompts)
        bound_ms = 1e3 * weight_bytes(model) / bandwidth
        for row in result["rows"]:
            if row["size"] == 1:
                row.update(default_over_bound=row["default_ms"] / bound_ms, autotuned_over_bound=row["autotuned_ms"] / bound_ms)
        results[dtype] = {**result, "bound_ms": bound_ms}
        for row in result["rows"]:
            print(f"{dtype} t({row['size']}): default {row['default_ms']:.1f} ms, autotuned {row['autotuned_ms']:.1f} ms, "
                  f"paired ratio {row['paired_ratio']:.2f}; compile {result['compile_seconds']}; "
                  f"same tokens {result['same_greedy_tokens']}")
        for row in result["prefill_rows"]:
            print(f"{dtype} prompt of {row['prompt_tokens']} tokens: eager {row['eager_ms']:.0f} ms, padded to {args.prefill}: "
                  f"default {row['default_over_eager']:.2f}x, autotuned {row['autotuned_over_eager']:.2f}x of eager")
        del model
    name = "smollm2-135m" if args.model is None else Path(args.model).name.lower()
    out = Path(args.out) if args.out else ROOT / "results" / "bench" / f"autotune_gain-{name}-{machine_slug(machine)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": "python tools/autotune_gain.py " + " ".join(sys.argv[1:]), "model": args.model or "SmolLM2-135M-Instruct",
              "machine": machine, "bandwidth": bandwidth, "sizes": args.sizes, "rounds": args.rounds, "repeats": args.repeats,
              "context": args.context, "prefill": args.prefill, "dtypes": results, "minutes": round((time.perf_counter() - start) / 60, 1)}
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
