"""One prepared GPU script: exactness on CUDA, t(n) on 1B/7B Llama shapes, predictions.

Installs nothing. Runs on a machine with a CUDA GPU and PyTorch + transformers:

    PYTHONPATH=. python tools/gpu_check.py --out results/gpu

1. Greedy equality on CUDA: the tiny-model decoding tests (``tests/test_decoding.py``
   with PASS_REF_TEST_DEVICE=cuda), and AR = PaSS = draft-model speculative = HF generate
   on a random Llama of 1B shape in float32 (bfloat16 agreement is reported, not asserted:
   docs/RESULTS.md).
2. t(n), n = 1..32, on a KV cache of 288 tokens (a 32-token prompt + half of 512 new
   tokens), bfloat16, random weights (timing does not depend on the weights' values), for
   a Llama-3.2-1B-shaped and a LLaMA-1-7B-shaped model (the paper's model).
3. The decoding loops themselves on those shapes: seconds per token of our AR loop and of
   HF ``generate``, seconds per PaSS iteration (L = 4, two calls), hence the loops'
   Python/launch overhead over t(1).
4. Predicted PaSS speed-ups on those shapes from the acceptance measured on the CPU
   (``results/trained/evaluation.json``): from t(n) alone and from the measured
   iteration times.
5. With ``--static``: the compiled static path (``pass_ref.static_model``, CUDA graphs on a
   GPU): greedy equality with eager float32 decoding on a tiny model, and per shape t(n) at
   its sizes (1, 5, 13) against the weight-streaming bound (weight bytes / measured copy
   bandwidth).

Writes ``gpu_check.json`` and a log under ``--out``. ``--shapes tiny`` runs the whole
script in seconds on a CPU (to test it before spending GPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

import pass_ref
from pass_ref import LookaheadEmbeddings, autoregressive_generate, pass_generate, speculative_generate
from pass_ref.experiments.bandwidth import memory_bandwidth, streaming_bound, weight_bytes
from pass_ref.experiments.latency import measure_forward_latency, measure_static_latency, predicted_pass_speedup

ROOT = Path(__file__).resolve().parents[1]

SHAPES = {
    # Llama-3.2-1B: 1.24 B parameters (tied embeddings untied here: +0.26 B, timing-neutral for decoding)
    "llama-1b": dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, vocab_size=128256
    ),
    # LLaMA-1 7B: the model of the paper's tables
    "llama-7b": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, vocab_size=32000
    ),
    # for a dry run of this script on a CPU
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=256),
}


def log(*args) -> None:
    print(*args, flush=True)


def random_llama(shape: str, dtype: torch.dtype, device: str, seed: int = 0):
    config = LlamaConfig(
        **SHAPES[shape],
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        attn_implementation="sdpa",
    )
    config.name_or_path = f"random-{shape}"
    previous = torch.get_default_dtype()
    torch.manual_seed(seed)  # a script, not library code: the global seed is ours to set
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval().requires_grad_(False)
    model.generation_config.pad_token_id = 0
    return model


def prompts(vocab: int, n: int, length: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (length,), generator=g).tolist() for _ in range(n)]


def hf_greedy(model, prompt: list[int], new: int) -> list[int]:
    ids = torch.tensor([prompt], device=model.device)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False)
    return out[0, len(prompt) :].tolist()


def greedy_agreement(model, num_prompts: int, new: int) -> dict:
    """AR vs PaSS (random and [UNK]-like vectors) vs draft-model speculative vs HF generate."""
    vocab = model.get_input_embeddings().weight.shape[0]
    la = LookaheadEmbeddings.from_random(model, 4, seed=1)
    draft = pass_ref.truncated_draft_model(model, max(1, model.config.num_hidden_layers // 4))
    same = {"pass": 0, "speculative": 0, "hf_generate": 0}
    accepted = 0
    for prompt in prompts(vocab, num_prompts, 32, seed=3):
        ar = autoregressive_generate(model, prompt, max_new_tokens=new).new_tokens.tolist()
        ps = pass_generate(model, la, prompt, max_new_tokens=new)
        sp = speculative_generate(model, draft, prompt, num_draft_tokens=4, max_new_tokens=new)
        accepted += sum(sp.stats.accepted) + sum(ps.stats.accepted)
        same["pass"] += ps.new_tokens.tolist() == ar
        same["speculative"] += sp.new_tokens.tolist() == ar
        same["hf_generate"] += hf_greedy(model, prompt, new) == ar
    return {"prompts": num_prompts, "new_tokens": new, "identical": same, "drafts_accepted": accepted}


def time_loops(model, new: int, repeats: int) -> dict:
    """Median seconds per token (AR, HF generate) and per PaSS iteration (L = 4), interleaved."""
    vocab = model.get_input_embeddings().weight.shape[0]
    la = LookaheadEmbeddings.from_random(model, 4, seed=1)
    prompt = prompts(vocab, 1, 32, seed=5)[0]
    rows = {"ar_s_per_token": [], "hf_s_per_token": [], "pass_s_per_iteration": [], "pass_s_per_call": []}

    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    for rep in range(repeats + 1):  # the first round warms up
        sync()
        t0 = time.perf_counter()
        ar = autoregressive_generate(model, prompt, max_new_tokens=new)
        sync()
        t1 = time.perf_counter()
        hf_greedy(model, prompt, new)
        sync()
        t2 = time.perf_counter()
        ps = pass_generate(model, la, prompt, max_new_tokens=new)
        sync()
        t3 = time.perf_counter()
        if rep == 0:
            continue
        rows["ar_s_per_token"].append((t1 - t0) / ar.stats.new_tokens)
        rows["hf_s_per_token"].append((t2 - t1) / new)
        rows["pass_s_per_iteration"].append((t3 - t2) / ps.stats.iterations)
        rows["pass_s_per_call"].append((t3 - t2) / ps.stats.model_calls)
    return {k: statistics.median(v) for k, v in rows.items()} | {"new_tokens": new, "repeats": repeats}


def run_tests(device: str, out: Path) -> dict:
    env = dict(os.environ, PASS_REF_TEST_DEVICE=device, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_decoding.py"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        text, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        text, rc = f"timed out: {exc}", -1
    (out / "pytest_cuda.log").write_text(text)
    summary = [line for line in text.splitlines() if "passed" in line or "failed" in line or "error" in line.lower()]
    return {
        "command": " ".join(cmd[2:]),
        "returncode": rc,
        "summary": summary[-1] if summary else text[-300:],
        "seconds": time.perf_counter() - start,
    }


def predictions(curve, loops: dict | None, evaluation: dict) -> list[dict]:
    """PaSS speed-up on this shape for each acceptance row measured on the CPU."""
    rows = []
    for row in evaluation["by_temperature"] + evaluation["by_L"]:
        acc = row["acceptance"]
        L = len(acc)
        if L + 1 > curve.new_tokens[-1]:
            continue
        item = {
            "lookahead": row["name"],
            "prompts": row["prompts"],
            "L": L,
            "temperature": row["temperature"],
            "acceptance": acc,
            "tokens_per_iteration": 2 + sum(acc),
            "cost_ratio": curve.ratio(L + 1),
            "predicted_speedup_from_t": predicted_pass_speedup(curve, acc),
            "break_even_accepted_per_iteration": 2 * curve.ratio(L + 1) - 2,
        }
        if loops is not None and L == 4:
            item["predicted_speedup_from_loop_times"] = (2 + sum(acc)) * loops["ar_s_per_token"] / loops["pass_s_per_iteration"]
        rows.append(item)
    return rows


STATIC_SIZES = (1, 5, 13)  # a token, PaSS's L + 1, one-call PaSS with 2 groups (L = 4)


def static_greedy_agreement(device: str, new: int = 24) -> dict:
    """The compiled static path gives eager float32's greedy tokens on a tiny model (AR and PaSS, four prompts)."""
    model = pass_ref.tiny_llama(vocab_size=64, hidden_size=64, num_layers=4, seed=0, dtype=torch.float32).to(device)
    fast = pass_ref.static_model(model, sizes=STATIC_SIZES, max_cache_len=64, progress=False)
    la = LookaheadEmbeddings.from_random(model, 4, seed=0)
    same = []
    for prompt in prompts(64, 4, 8, seed=1):
        want = autoregressive_generate(model, prompt, max_new_tokens=new).new_tokens.tolist()
        same.append(autoregressive_generate(fast, prompt, max_new_tokens=new).new_tokens.tolist() == want
                    and pass_generate(fast, la, prompt, max_new_tokens=new).new_tokens.tolist() == want)
    return {"prompts": len(same), "identical": sum(same)}


def static_latency(model, context: int, repeats: int, bandwidth: float) -> dict:
    """t(n) of the compiled static path at its sizes, and t(1) against the weight-streaming bound."""
    fast = pass_ref.static_model(model, sizes=STATIC_SIZES, max_cache_len=context + 2 * STATIC_SIZES[-1], progress=False)
    curve = measure_static_latency(fast, context=context, repeats=repeats)
    bound = streaming_bound(weight_bytes(model), bandwidth)
    return {"latency": curve.to_dict(), "bound_ms": 1e3 * bound, "t1_over_bound": curve.t(1) / bound}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu")
    parser.add_argument("--shapes", default="llama-1b,llama-7b")
    parser.add_argument("--context", type=int, default=288)
    parser.add_argument("--max-n", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--loop-tokens", type=int, default=128)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--static", action="store_true", help="also the compiled static path (compiles 3 sizes per shape)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result: dict = {
        "command": "python tools/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "context": args.context,
        "shapes": {},
    }
    log(f"device {result['device']}  torch {torch.__version__}  transformers {transformers.__version__}")
    evaluation = json.loads((ROOT / "results" / "trained" / "evaluation.json").read_text())

    def save():
        (out / "gpu_check.json").write_text(json.dumps(result, indent=1))

    start = time.perf_counter()
    if not args.skip_tests:
        result["tests"] = run_tests(device, out)
        log("tests/test_decoding.py on", device, "->", result["tests"]["summary"])
        save()
    # Exactness on the device with a tiny float64 model (peaked: drafts do get accepted).
    tiny = pass_ref.tiny_llama(vocab_size=64, hidden_size=64, num_layers=4, seed=0).to(device)
    result["greedy_tiny_float64"] = greedy_agreement(tiny, 8, 48)
    log("greedy equality, tiny float64:", result["greedy_tiny_float64"])
    save()
    if args.static:
        result["bandwidth"] = memory_bandwidth(device)
        result["static_greedy_float32"] = static_greedy_agreement(device)
        log(f"copy bandwidth {result['bandwidth'] / 1e9:.0f} GB/s; compiled static path, greedy = eager float32:",
            result["static_greedy_float32"])
        save()
    for shape in args.shapes.split(","):
        entry: dict = {"config": SHAPES[shape]}
        result["shapes"][shape] = entry
        if shape in ("llama-1b", "tiny"):
            t0 = time.perf_counter()
            model = random_llama(shape, torch.float32, device)
            entry["greedy_float32"] = greedy_agreement(model, 4, 32)
            log(f"{shape} float32 greedy agreement: {entry['greedy_float32']}  ({time.perf_counter() - t0:.0f} s)")
            del model
        if device == "cuda":
            torch.cuda.empty_cache()
        t0 = time.perf_counter()
        model = random_llama(shape, torch.bfloat16, device)
        entry["parameters"] = sum(p.numel() for p in model.parameters())
        log(f"{shape}: {entry['parameters'] / 1e9:.2f} B parameters, built in {time.perf_counter() - t0:.0f} s")
        entry["greedy_bfloat16"] = greedy_agreement(model, 4, 32)
        log(f"{shape} bfloat16 greedy agreement (not asserted): {entry['greedy_bfloat16']}")
        curve = measure_forward_latency(model, range(1, args.max_n + 1), context=args.context, repeats=args.repeats)
        entry["latency"] = curve.to_dict()
        log(f"{shape} t(n) ms: " + " ".join(f"{n}:{1e3 * s:.2f}" for n, s in zip(curve.new_tokens, curve.seconds)))
        save()
        if args.static:
            entry["static"] = static_latency(model, args.context, args.repeats, result["bandwidth"])
            t = dict(zip(entry["static"]["latency"]["new_tokens"], entry["static"]["latency"]["seconds"]))
            log(f"{shape} compiled static path t(n) ms: " + " ".join(f"{n}:{1e3 * s:.2f}" for n, s in t.items())
                + f"; t(1) = {entry['static']['t1_over_bound']:.2f}x the streaming bound ({entry['static']['bound_ms']:.2f} ms)")
            save()
        entry["loops"] = time_loops(model, args.loop_tokens, 3)
        loops = entry["loops"]
        loops["ar_overhead_over_t1"] = loops["ar_s_per_token"] / curve.t(1) - 1
        loops["pass_overhead_over_2t5"] = loops["pass_s_per_iteration"] / (2 * curve.t(5)) - 1
        log(f"{shape} loops: {loops}")
        entry["predictions"] = predictions(curve, loops, evaluation)
        for p in entry["predictions"]:
            if p["lookahead"] == "trained" and p["temperature"] == 0.0:
                log(
                    f"  {p['prompts']:>14} L={p['L']} greedy: tokens/iter {p['tokens_per_iteration']:.2f} "
                    f"t(L+1)/t(1) {p['cost_ratio']:.3f} -> predicted {p['predicted_speedup_from_t']:.3f}x"
                )
        save()
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    result["seconds"] = time.perf_counter() - start
    save()
    log(f"done in {result['seconds']:.0f} s -> {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
