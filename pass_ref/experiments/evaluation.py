"""What training buys: per-position acceptance and tokens per model call, measured by decoding.

The measured quantities are the paper's (``docs/paper.md``): run PaSS on held-out prompts and
count, for each draft position i, the fraction of iterations whose draft x̃_i was
accepted, and the headline figure, generated tokens per target-model call
(autoregressive decoding makes exactly 1.0; PaSS makes 2 calls per iteration, so its
ceiling is (L + 2) / 2).

    rows = compare_lookaheads(model, {"trained": t, "[UNK]": u, "random": r},
                              {"held-out code": prompts}, temperatures=(0, 0.8), top_k=10)
    print(format_table(rows))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..generate import pass_generate
from ..lookahead import LookaheadEmbeddings


@dataclass
class AcceptanceResult:
    """PaSS on a set of prompts, aggregated over prompts (sums, then ratios)."""

    name: str
    prompts: str
    num_lookahead: int
    temperature: float
    top_k: int | None
    acceptance: list[float]  # (L,) fraction of iterations in which x̃_i was accepted
    tokens_per_call: float  # generated tokens / target calls
    tokens_per_iteration: float
    new_tokens: int
    model_calls: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure_acceptance(
    model,
    lookahead: LookaheadEmbeddings,
    prompts: list[torch.Tensor],
    *,
    num_lookahead: int | None = None,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    name: str = "",
    prompts_name: str = "",
) -> AcceptanceResult:
    """Decode every prompt with PaSS (EOS ignored, so every run is ``max_new_tokens`` long).

    Prompt j uses seed ``seed + j``, so two look-ahead sets see the same random streams.
    """
    if not prompts:
        raise ValueError("give at least one prompt")
    L = lookahead.num_lookahead if num_lookahead is None else num_lookahead
    drafted, accepted = [0] * L, [0] * L
    new_tokens = calls = iterations = 0
    for j, ids in enumerate(prompts):
        out = pass_generate(
            model, lookahead, ids, num_lookahead=L, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed + j
        )
        s = out.stats
        for i, (d, a) in enumerate(zip(s.drafted, s.accepted)):
            drafted[i] += d
            accepted[i] += a
        new_tokens += s.new_tokens
        calls += s.model_calls
        iterations += s.iterations
    return AcceptanceResult(
        name=name,
        prompts=prompts_name,
        num_lookahead=L,
        temperature=temperature,
        top_k=top_k,
        acceptance=[a / d if d else float("nan") for a, d in zip(accepted, drafted)],
        tokens_per_call=new_tokens / calls,
        tokens_per_iteration=new_tokens / iterations,
        new_tokens=new_tokens,
        model_calls=calls,
    )


def compare_lookaheads(
    model,
    candidates: dict[str, LookaheadEmbeddings],
    prompt_sets: dict[str, list[torch.Tensor]],
    *,
    temperatures=(0.0,),
    top_k: int | None = 10,
    num_lookahead: int | None = None,
    max_new_tokens: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> list[AcceptanceResult]:
    """Every candidate on every prompt set at every temperature (top-k applies when T > 0)."""
    jobs = [(c, p, t) for p in prompt_sets for t in temperatures for c in candidates]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="acceptance")
    results = []
    for cand, pset, temp in jobs:
        results.append(
            measure_acceptance(
                model,
                candidates[cand],
                prompt_sets[pset],
                num_lookahead=num_lookahead,
                max_new_tokens=max_new_tokens,
                temperature=temp,
                top_k=top_k if temp > 0 else None,
                seed=seed,
                name=cand,
                prompts_name=pset,
            )
        )
    return results


def format_table(results: list[AcceptanceResult]) -> str:
    """Markdown table: one row per (prompts, temperature, look-ahead set)."""
    width = max(r.num_lookahead for r in results)
    head = "| prompts | T | look-ahead | " + " | ".join(f"LA_{i + 1}" for i in range(width)) + " | tokens/call |"
    lines = [head, "|" + "---|" * (width + 4)]
    for r in results:
        acc = [f"{a:.2f}" for a in r.acceptance] + [""] * (width - len(r.acceptance))
        temp = "greedy" if r.temperature == 0 else f"{r.temperature:g}" + (f", top-{r.top_k}" if r.top_k else "")
        lines.append(f"| {r.prompts} | {temp} | {r.name} | " + " | ".join(acc) + f" | {r.tokens_per_call:.3f} |")
    return "\n".join(lines)


def plot_training_curves(histories: dict[str, dict], *, smooth: int = 10, ax=None):
    """Training loss (moving average over ``smooth`` steps) of several runs; returns the figure.

    ``histories`` maps a label to a dict with a "loss" list (``TrainHistory`` as a dict, or
    ``pass_ref.trained.training_history``), optionally "heldout_loss" (a final value).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
    else:
        fig = ax.figure
    for label, history in histories.items():
        loss = torch.tensor(history["loss"], dtype=torch.float64)
        k = max(1, min(smooth, len(loss)))
        avg = torch.nn.functional.avg_pool1d(loss[None, None], k, stride=1)[0, 0] if len(loss) >= k else loss
        line = ax.plot(range(k, k + len(avg)), avg.tolist(), label=label)[0]
        if history.get("heldout_loss") is not None:
            ax.scatter([len(loss)], [history["heldout_loss"]], color=line.get_color(), marker="x", zorder=3)
    ax.set_xlabel("step")
    ax.set_ylabel(f"look-ahead cross-entropy (avg of {smooth} steps)")
    ax.set_title("Training the look-ahead embeddings (x: held-out loss)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def heldout_report(
    model,
    tokenizer,
    lookahead: LookaheadEmbeddings,
    domain: str,
    *,
    seq_len: int = 128,
    windows: int = 64,
    prompts: int = 8,
    new_tokens: int = 64,
    seed: int = 0,
) -> dict:
    """The held-out figures stored in a checkpoint's metadata.

    The training objective on ``windows`` held-out windows (loss and top-1 accuracy per
    [LA]_i against the corpus) and greedy PaSS on ``prompts`` held-out 32-token prompts
    (acceptance per position and tokens per model call).
    """
    from ..training.corpora import heldout_prompts, load_corpus, tokenize_windows
    from ..training.train import evaluate_loss

    heldout = tokenize_windows(tokenizer, load_corpus(domain, "heldout"), seq_len, max_windows=windows)
    loss, accuracy = evaluate_loss(model, lookahead, heldout, seed=seed)
    greedy = measure_acceptance(model, lookahead, heldout_prompts(tokenizer, domain, prompts, seed=seed), max_new_tokens=new_tokens)
    return {
        "heldout_loss": round(loss, 4),
        "heldout_top1_accuracy": [round(a, 4) for a in accuracy],
        "heldout_greedy": {
            "prompts": prompts,
            "prompt_tokens": 32,
            "new_tokens_per_prompt": new_tokens,
            "acceptance": [round(a, 4) for a in greedy.acceptance],
            "tokens_per_call": round(greedy.tokens_per_call, 4),
        },
    }
