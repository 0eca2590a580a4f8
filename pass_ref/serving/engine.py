"""Start vLLM with each speculative route and read its acceptance counters (needs ``make vllm``).

Routes (``ROUTES``): ``plain`` (no speculation), ``ngram`` (vLLM's prompt lookup),
``parallel`` (a shared-vector set exported by ``export_vllm``, served as vLLM's ``draft_model``
with ``parallel_drafting``) and ``custom`` (a set of distinct vectors, drafted by
``pass_ref.serving.vllm.LookaheadProposer``). Every route is checked before vLLM starts
(``check_vllm_draft``, the set's L against K), because a wrong draft would only cost speed and
would never show up as a wrong output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ROUTES = ("plain", "ngram", "parallel", "custom")


def asset_folders(root) -> dict:
    """Where ``make vllm-assets`` puts each model's folders: name -> (base, shared draft, distinct set).

    ``root`` is the repository; ``PASS_REF_VLLM_ASSETS`` moves the written folders elsewhere.
    """
    from pathlib import Path

    root = Path(root)
    assets = Path(os.environ.get("PASS_REF_VLLM_ASSETS", root / "runs" / "vllm"))
    return {
        "smollm2": (assets / "smollm2-135m-instruct", assets / "draft-smollm2-shared-code-L4", root / "pass_ref/trained/paper/code-L4"),
        # Qwen's distinct set is the 50-step one its shared set matches (same recipe and steps): the two routes compare
        # like for like (the shipped Qwen paper set trains until its held-out loss stops improving).
        "qwen0.5b": (assets / "qwen2.5-coder-0.5b-instruct", assets / "draft-qwen0.5b-shared-code-L4",
                     root / "results/serving/sets/qwen0.5b-distinct-code-L4-50steps"),
    }


@dataclass
class SpecCounters:
    """vLLM's speculative counters: drafts (steps with drafts), draft tokens, accepted tokens per position."""

    drafts: int
    draft_tokens: int
    accepted: int
    accepted_per_position: list[int]

    @property
    def mean_acceptance_length(self) -> float:
        """Tokens per verification step: 1 + accepted drafts per step (1.0 with no drafts)."""
        return 1.0 + self.accepted / self.drafts if self.drafts else 1.0

    @property
    def acceptance_per_position(self) -> list[float]:
        """P(draft j accepted), the fraction of steps whose first j drafts were all kept."""
        return [a / self.drafts for a in self.accepted_per_position] if self.drafts else []


def speculative_config(route: str, *, k: int, draft_dir=None, lookahead_dir=None) -> dict | None:
    """The ``speculative_config`` for a route (None for plain decoding)."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    if route == "plain":
        return None
    if route == "ngram":
        return {"method": "ngram", "num_speculative_tokens": k, "prompt_lookup_max": 3, "prompt_lookup_min": 1}
    if route == "parallel":
        if draft_dir is None:
            raise ValueError("the parallel route needs draft_dir (written by `python -m pass_ref export-vllm`)")
        return {"method": "draft_model", "model": str(draft_dir), "num_speculative_tokens": k, "parallel_drafting": True}
    if lookahead_dir is None:
        raise ValueError("the custom route needs lookahead_dir (a look-ahead set's folder)")
    os.environ["PASS_REF_LOOKAHEAD"] = str(lookahead_dir)  # read by the proposer in vLLM's worker process
    return {"method": "custom_class", "model": "pass_ref.serving.vllm.LookaheadProposer", "num_speculative_tokens": k}


def check_route(route: str, base_dir, *, k: int, draft_dir=None, lookahead_dir=None) -> None:
    """Refuse a route that would draft wrongly, before vLLM spends a minute starting."""
    if route == "parallel":
        from .export import check_vllm_draft

        check_vllm_draft(base_dir, draft_dir, k)
    elif route == "custom":
        from transformers import AutoConfig

        from ..lookahead import LookaheadEmbeddings

        la = LookaheadEmbeddings.from_pretrained(lookahead_dir)
        config = AutoConfig.from_pretrained(base_dir)
        for key in ("hidden_size", "vocab_size", "num_hidden_layers", "model_type"):
            ours, theirs = la.base_model.get(key), getattr(config, key, None)
            if key == "hidden_size":
                ours = la.hidden_size
            if ours is not None and ours != theirs:
                raise ValueError(f"the look-ahead set was made for a model with {key}={ours}, not {theirs}")
        if not 1 <= k <= la.num_lookahead + 1:
            raise ValueError(f"num_speculative_tokens={k}: the set has L = {la.num_lookahead}, so K must be in 1..{la.num_lookahead + 1}")


def make_llm(route: str, base_dir, *, k: int = 4, draft_dir=None, lookahead_dir=None, dtype: str = "float32",
             max_model_len: int = 1024, seed: int = 0):
    """A ``vllm.LLM`` on ``base_dir`` with the route's speculation (eager, no CUDA graphs, one process group)."""
    check_route(route, base_dir, k=k, draft_dir=draft_dir, lookahead_dir=lookahead_dir)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM

    spec = speculative_config(route, k=k, draft_dir=draft_dir, lookahead_dir=lookahead_dir)
    return LLM(model=str(base_dir), dtype=dtype, enforce_eager=True, max_model_len=max_model_len, seed=seed, disable_log_stats=False,
               speculative_config=spec)


def spec_counters(llm) -> SpecCounters:
    """Read vLLM's speculative-decoding counters (zeros for plain decoding)."""
    values = {}
    for metric in llm.get_metrics():
        if metric.name.startswith("vllm:spec_decode"):
            values[metric.name] = getattr(metric, "values", None) or getattr(metric, "value", 0)
    per_position = values.get("vllm:spec_decode_num_accepted_tokens_per_pos", [])
    return SpecCounters(int(values.get("vllm:spec_decode_num_drafts", 0)), int(values.get("vllm:spec_decode_num_draft_tokens", 0)),
                        int(values.get("vllm:spec_decode_num_accepted_tokens", 0)), [int(v) for v in per_position])


def run_route(route: str, base_dir, prompts: list[str], *, max_tokens: int, temperature: float = 0.0, seed: int = 0,
              k: int = 4, draft_dir=None, lookahead_dir=None, dtype: str = "float32", batch: int | None = None) -> dict:
    """Start vLLM with one route, generate for the prompts, return tokens, timings and counters.

    ``batch``: prompts per ``generate`` call, the calls made one after another (None: all in one
    batch). A batch of one is a single user's latency; a large batch is a server's throughput.
    """
    import time

    from vllm import SamplingParams

    if batch is not None and batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    size = len(prompts) if batch is None else batch

    tick = time.perf_counter()
    llm = make_llm(route, base_dir, k=k, draft_dir=draft_dir, lookahead_dir=lookahead_dir, dtype=dtype, seed=seed)
    startup = time.perf_counter() - tick
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed, ignore_eos=True)
    llm.generate(prompts[:1], SamplingParams(temperature=0.0, max_tokens=4))  # warm-up, not counted
    before = spec_counters(llm)
    tick = time.perf_counter()
    outputs = [o for i in range(0, len(prompts), size) for o in llm.generate(prompts[i : i + size], params, use_tqdm=False)]
    seconds = time.perf_counter() - tick
    after = spec_counters(llm)
    counters = SpecCounters(after.drafts - before.drafts, after.draft_tokens - before.draft_tokens, after.accepted - before.accepted,
                            [a - b for a, b in zip(after.accepted_per_position, before.accepted_per_position + [0] * k)])
    tokens = [list(o.outputs[0].token_ids) for o in outputs]
    return {
        "route": route, "k": k, "dtype": dtype, "temperature": temperature, "seed": seed, "batch": size, "startup_s": round(startup, 1),
        "generate_s": seconds, "new_tokens": sum(len(t) for t in tokens), "tokens_per_s": sum(len(t) for t in tokens) / seconds,
        "tokens": tokens, "drafts": counters.drafts, "accepted": counters.accepted,
        "acceptance_per_position": counters.acceptance_per_position, "mean_acceptance_length": counters.mean_acceptance_length,
    }


def main(argv=None) -> int:
    """``python -m pass_ref.serving.engine ROUTE BASE_DIR --out run.json``: one route, one process (vLLM's engine
    processes end with it)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("route", choices=ROUTES)
    parser.add_argument("base", help="the target model's Hugging Face folder (python -m pass_ref export-hf)")
    parser.add_argument("--draft", default=None, help="parallel route: the folder written by export-vllm")
    parser.add_argument("--lookahead", default=None, help="custom route: a look-ahead set's folder")
    parser.add_argument("--k", type=int, default=4, help="num_speculative_tokens")
    parser.add_argument("--prompts", type=int, default=4, help="HumanEval prompts")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch", type=int, default=None, help="prompts per generate call (default: all in one batch)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from ..experiments.data import humaneval_prompts

    result = run_route(args.route, args.base, humaneval_prompts(args.prompts), max_tokens=args.max_tokens,
                       temperature=args.temperature, seed=args.seed, k=args.k, draft_dir=args.draft,
                       lookahead_dir=args.lookahead, dtype=args.dtype, batch=args.batch)
    Path(args.out).write_text(json.dumps(result) + "\n")
    print(f"{args.route}: {result['tokens_per_s']:.1f} tokens/s, mean acceptance length {result['mean_acceptance_length']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
