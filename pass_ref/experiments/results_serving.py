"""The serving sections of ``docs/RESULTS.md``: shared vs distinct look-ahead vectors, and vLLM's routes."""

from __future__ import annotations

import json
from pathlib import Path


def shared_section(results: Path) -> list[str]:
    """One shared vector against L distinct ones and [UNK] (``tools/shared_ablation.py``)."""
    out = []
    for path in sorted((results / "serving").glob("shared_ablation*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        out += [f"**{r['model']}**, L = {r['L']}, greedy two-call PaSS, {r['prompts_per_set']} prompts per set x "
                f"{r['new_tokens']} tokens (`{r['command']}`; shared set trained by `{r['shared_recipe']}`). "
                + (f"The distinct set is `{r['distinct_set']}`" if r.get("distinct_set", "shipped paper set") != "shipped paper set"
                   else "The distinct set is the model's shipped paper-recipe set (SmolLM2's is the first 4 vectors of an L = 8 training)")
                + (f" ({r['distinct_steps']} steps)" if r.get("distinct_steps") else "")
                + "; the shared set was trained at L = 4 with the same recipe and `--shared`. "
                "The machine does not matter here: these are counts, not timings.", "",
                "| prompts | set | acceptance per position | accepted drafts per iteration | tokens per call |",
                "|---|---|---|---|---|"]
        for row in r["rows"]:
            acc = " ".join(f"{a:.2f}" for a in row["acceptance"])
            out.append(f"| {row['prompts']} | {row['set']} | {acc} | {row['accepted_per_iteration']:.3f} | {row['tokens_per_call']:.3f} |")
        kept = ", ".join(f"{k}: {v:.0%}" for k, v in r["shared_keeps"].items() if v is not None)
        out += ["", f"The shared vector keeps {kept} of the distinct set's accepted drafts per iteration.", ""]
    return out


def vllm_section(results: Path, machine) -> list[str]:
    """vLLM plain, ngram and both PaSS routes (``tools/vllm_bench.py``); ``machine`` formats a run's machine."""
    out = []
    for path in sorted((results / "serving").glob("vllm_bench*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        batch = r.get("batch", r["prompts"])
        out += [f"**{r['model']}**, {r['dtype']}, K = {r['k']}, {r['prompts']} HumanEval prompts x {r['max_tokens']} tokens "
                + ("in one batch" if batch >= r["prompts"] else f"in batches of {batch}, one after another")
                + f", greedy; vLLM {r['vllm']}; {machine(r)}; `{r['command']}`. Each route starts its own engine "
                "(startup not timed); median of the rounds.", "",
                "| route | tokens/s | × vLLM plain | mean acceptance length | acceptance per position | same tokens as plain |",
                "|---|---|---|---|---|---|"]
        for row in r["rows"]:
            acc = " ".join(f"{a:.2f}" for a in row["acceptance_per_position"]) or "–"
            same = {True: "yes", False: "NO", None: "–"}[row["same_tokens_as_plain"]]
            out.append(f"| {row['route']} | {row['tokens_per_s']:.1f} | {row['vs_plain']:.2f}× | "
                       f"{row['mean_acceptance_length']:.2f} | {acc} | {same} |")
        out.append("")
    return out
