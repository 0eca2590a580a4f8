"""The whole benchmark pipeline behind ``python -m pass_ref bench`` (and notebook 06).

``benchmark(model, tokenizer, task=..., ...)`` picks the prompts, builds the look-ahead
sets and the draft model, measures the latency curve t(n), runs every method
interleaved (``pass_ref.experiments.bench``), and writes the table, the CSV/JSON and the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..lookahead import LookaheadEmbeddings
from ..methods import METHODS as TABLE
from .bench import BenchRunner, all_methods, bench_options, plan_runs, run_benchmark, summarize, write_results

TASKS = ("humaneval", "code", "text")


def task_prompts(tokenizer, task: str, n: int, *, prompt_len: int = 32, seed: int = 0) -> list[list[int]]:
    """Prompts of a task: whole HumanEval prompts, or 32-token held-out code / text prompts."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of prompts must be a positive int, got {n!r}")
    if task == "humaneval":
        from .data import humaneval_prompts

        return [tokenizer(p, add_special_tokens=False).input_ids for p in humaneval_prompts(n)]
    if task in ("code", "text"):
        from ..training.corpora import heldout_prompts

        return [p.tolist() for p in heldout_prompts(tokenizer, task, n, prompt_len, seed=seed)]
    raise ValueError(f"unknown task {task!r}; choose from {TASKS}")


def trained_lookaheads(
    model, task: str, lengths: Sequence[int], source: str | Path | None = None, recipe: str = "extended"
) -> dict[int, LookaheadEmbeddings]:
    """Trained sets for each L: the shipped set of the task's domain and ``recipe``, or ``source``'s first L vectors."""
    from ..trained import load_lookahead

    if source is not None:
        full = LookaheadEmbeddings.from_pretrained(source, model=model)
        if max(lengths) > full.num_lookahead:
            raise ValueError(f"{source} holds {full.num_lookahead} look-ahead vectors, fewer than L = {max(lengths)}")
        return {L: full if L == full.num_lookahead else full.truncated(L) for L in lengths}
    domain = "text" if task == "text" else "code"
    return {L: load_lookahead(domain, L, recipe=recipe, model=model) for L in lengths}


@dataclass
class BenchResult:
    rows: list[dict]
    records: list[dict]
    completed: bool
    latency: object | None = None
    figures: list[Path] = field(default_factory=list)
    minutes: float = 0.0


def benchmark(
    model,
    tokenizer,
    *,
    task: str = "humaneval",
    prompts: int = 5,
    max_new_tokens: int = 128,
    lookaheads: Sequence[int] = (4,),
    unk_lookaheads: Sequence[int] | None = None,
    temperatures: Sequence[float] = (0.0,),
    top_k: int | None = 10,
    methods: Sequence[str] | None = None,
    num_draft_tokens: int = 4,
    draft_layers: int = 8,
    prompt_lookup_tokens: int = 10,
    groups: Sequence[int] | str | None = "auto",
    hybrid_groups: Sequence[int] | None = (0,),
    trained: dict[int, LookaheadEmbeddings] | None = None,
    recipe: str = "extended",
    latency: bool = True,
    out: str | Path | None = None,
    command: str = "",
    seed: int = 0,
    progress: bool = True,
    options: dict[str, dict] | None = None,
) -> BenchResult:
    """Run the benchmark; with ``out`` write summary.md/.csv, results.json, records.jsonl, figures.

    ``methods``: names from the method table and the reference runs (None: all of them).
    ``options``: keyword options per method, on top of those the flags above give.
    ``groups="auto"``: one-call PaSS's groups chosen per set from its measured acceptance
    and the t(n) measured here (``latency.best_groups``; needs ``latency=True``), kept only
    if also timed faster than the two calls on a held-out prompt of the task's domain
    (``bench.confirm_groups``; the config's ``group_choices`` says how each was chosen).
    """
    from ..models import truncated_draft_model
    from .doctor import machine_features
    from .latency import measure_forward_latency

    start = time.perf_counter()
    if groups == "auto" and not latency:
        raise ValueError("groups='auto' chooses from the machine's t(n): keep latency=True or pass explicit groups")
    methods = list(all_methods()) if methods is None else list(methods)
    ours = [TABLE[m] for m in methods if m in TABLE]
    draft = truncated_draft_model(model, draft_layers) if any("draft_model" in m.options for m in ours) else None
    options = bench_options(num_draft_tokens=num_draft_tokens, prompt_lookup_tokens=prompt_lookup_tokens, groups=groups,
                            hybrid_groups=hybrid_groups, draft_model=draft, extra=options)
    specs = plan_runs(methods, temperatures, lookaheads, unk_lookaheads=unk_lookaheads, options=options,
                      prompt_lookup_tokens=prompt_lookup_tokens)
    prompt_ids = task_prompts(tokenizer, task, prompts, seed=seed)
    if trained is None and any(m.needs_lookahead for m in ours):
        trained = trained_lookaheads(model, task, lookaheads, recipe=recipe)
    calibration = None
    if groups == "auto":  # a prompt that is never benchmarked: a predicted group set is timed on it
        from ..training.corpora import heldout_prompts

        domain = "text" if task == "text" else "code"
        calibration = heldout_prompts(tokenizer, domain, prompts + 1, seed=seed)[-1].tolist()  # after the benchmarked ones
    runner = BenchRunner(model, max_new_tokens=max_new_tokens, top_k=top_k, trained=trained, options=options, seed=seed,
                         calibration=calibration)
    records_path = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        records_path = Path(out) / "records.jsonl"
        records_path.unlink(missing_ok=True)
    curve, draft_call_s = None, None
    if latency:
        # A realistic cache: the median prompt plus half of the generated tokens.
        context = sorted(len(p) for p in prompt_ids)[len(prompt_ids) // 2] + max_new_tokens // 2
        # Up to the largest call any method makes: a hybrid call has lookup drafts and groups.
        L_max = max(list(lookaheads) + list(unk_lookaheads or []))
        G = max(L_max + 1 if g is None or isinstance(g, str) else len(g) for g in (groups, hybrid_groups))
        largest = 1 + max(L_max, num_draft_tokens, prompt_lookup_tokens) + G * L_max
        points = sorted({n for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 17, 21, 25, 29, 33, 41, 49) if n < largest} | {largest})
        curve = measure_forward_latency(model, points, context=context, repeats=5, progress=progress)
        runner.latency = curve
        if draft is not None:
            draft_call_s = measure_forward_latency(draft, [1], context=context, repeats=5).t(1)
    records, completed = run_benchmark(runner, prompt_ids, specs, records_path=records_path, progress=progress)
    rows = summarize(records, latency=curve, draft_call_s=draft_call_s)
    result = BenchResult(rows=rows, records=records, completed=completed, latency=curve, minutes=(time.perf_counter() - start) / 60)
    if out is not None and rows:
        config = {
            "command": command,
            "task": task,
            "prompts": prompts,
            "max_new_tokens": max_new_tokens,
            "lookaheads": list(lookaheads),
            "unk_lookaheads": list(unk_lookaheads) if unk_lookaheads is not None else list(lookaheads),
            "temperatures": list(temperatures),
            "top_k": top_k,
            "methods": list(methods),
            "num_draft_tokens": num_draft_tokens,
            "draft_layers": draft_layers,
            "prompt_lookup_tokens": prompt_lookup_tokens,
            "recipe": recipe,
            "groups": groups if groups is None or isinstance(groups, str) else list(groups),
            "hybrid_groups": None if hybrid_groups is None else list(hybrid_groups),
            "dtype": str(model.get_input_embeddings().weight.dtype).replace("torch.", ""),
            "device": str(model.get_input_embeddings().weight.device),
            "model": str(getattr(model.config, "name_or_path", "")),
            "draft_call_s": draft_call_s,
            "minutes": round(result.minutes, 2),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": machine_features(str(model.get_input_embeddings().weight.device)),
            "group_choices": {f"{m} L={L}": {k: list(v) if isinstance(v, tuple) else v for k, v in note.items()}
                              for (m, L), note in runner.group_choices.items()},
        }
        write_results(out, config, rows, completed=completed, latency=curve)
        from .bench_figures import save_figures

        result.figures = save_figures(rows, out, default_L=4 if 4 in lookaheads else lookaheads[0])
    return result
