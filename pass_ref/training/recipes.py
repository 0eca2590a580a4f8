"""The paper's training recipe as data, and where a set or a config departs from it.

The paper (``docs/paper.md``, "Training") states: the frozen model, L input vectors started
from the UNK token's embedding, one random insertion position per batch, cross-entropy of the
look-ahead outputs against the corpus tokens 2..L+1 places ahead, AdamW at learning rate 0.01,
batches of 8 sequences, 10,000 steps with 2,000 warm-up steps and a cosine schedule. It does not
state the sequence length or the weight decay. ``PAPER`` holds exactly what it states;
``TrainConfig.paper()`` is built from it, and ``deviations`` lists how a config, or the recipe a
shipped set was trained with, differs, with the reason for each difference.
"""

from __future__ import annotations

from dataclasses import dataclass

# What the paper states, in TrainConfig's field names ("not stated" fields are absent).
PAPER = {
    "steps": 10_000,
    "warmup": 2_000,
    "batch_size": 8,
    "lr": 0.01,
    "init": "unk",
    "insertion": "batch",
    "blocks_per_sequence": 1,
    "targets": "data",
    "data": "corpus",
    "deep": False,
    "shared": False,
}
NOT_STATED = ("seq_len", "weight_decay")

# Why a departure was made, by field (our reasons; the measurements are in docs/RESULTS.md).
WHY = {
    "steps": "the CPU budget: minutes on 2 cores, not a GPU run of unstated length",
    "warmup": "chosen for this run",
    "init": "SmolLM2's UNK is its end-of-text separator, a busy token; from it the loss starts above uniform "
            "and stays above 10 after 150 steps (results/trained/unk_init_code_L8.json)",
    "insertion": "each sequence draws its own points: more distinct targets per step, same loss per point",
    "blocks_per_sequence": "16 blocks share one masked pass, equal to 16 separate passes (tested): 16x the "
                           "supervised targets per second",
    "targets": "extension: the model's own distribution q as a soft target (acceptance is agreement with q)",
    "data": "extension: trained on the model's own continuations (self-distillation)",
    "deep": "extension: learned vectors added inside every decoder layer at the look-ahead positions",
    "shared": "extension: one vector for every position, so an engine's parallel drafting (one token id) can run it",
    "batch_size": "a smaller batch for a quick run",
    "lr": "tuned for a quick run",
}
LABELS = {
    "steps": "optimiser steps", "warmup": "warm-up steps (then cosine)", "batch_size": "sequences per batch",
    "lr": "AdamW learning rate", "init": "start of the vectors", "insertion": "insertion points drawn per",
    "blocks_per_sequence": "insertion blocks per pass", "targets": "targets", "data": "training data",
    "deep": "vectors inside the layers", "shared": "one vector for all positions", "seq_len": "tokens per sequence",
    "weight_decay": "weight decay",
}


@dataclass(frozen=True)
class Deviation:
    """One setting where a recipe differs from the paper's: ``(setting, ours, paper, why)``."""

    setting: str
    ours: str
    paper: str
    why: str


def _show(field: str, value) -> str:
    if field == "init":
        return {"unk": "UNK token embedding", "mean": "mean token embedding"}.get(value, str(value))
    if field == "targets":
        return {"data": "corpus tokens (hard)", "soft": "model's q (soft)"}.get(value, str(value))
    if field in ("deep", "shared"):
        return "yes" if value else "no"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def deviations(recipe, *, truncated_from: int | None = None, corpus: str | None = None) -> list[Deviation]:
    """Where ``recipe`` departs from the paper's training, one row per setting, with the reason.

    Args:
        recipe: a ``TrainConfig``, its ``asdict``, a shipped set's ``metadata["recipe"]``, or a
            ``LookaheadEmbeddings`` (its metadata supplies the recipe, ``truncated_from`` and
            the corpus).
        truncated_from: the L of the training this set's vectors were cut from, if any.
        corpus: the training corpus's domain ("code", "text"), if known.
    Returns:
        the differing rows, then the settings the paper does not state; empty for
        ``TrainConfig.paper()`` except those.
    """
    metadata = getattr(recipe, "metadata", None)
    if metadata is not None:  # a LookaheadEmbeddings
        if "recipe" not in metadata:
            raise ValueError("this look-ahead set carries no training recipe in its metadata (untrained or made by hand)")
        truncated_from = truncated_from if truncated_from is not None else metadata.get("truncated_from")
        corpus = corpus if corpus is not None else (metadata.get("corpus") or {}).get("domain")
        recipe = metadata["recipe"]
    if not isinstance(recipe, dict):
        from dataclasses import asdict

        recipe = asdict(recipe)
    rows = []
    for field, paper in PAPER.items():
        ours = recipe.get(field, "sequence" if field == "insertion" else None)  # sets trained before the option drew per sequence
        if ours is None or ours == paper:
            continue
        if field == "insertion" and recipe.get("blocks_per_sequence", 1) == 1 and recipe.get("batch_size") == 1:
            continue  # one sequence per batch: the two rules coincide
        why = WHY[field]
        if field == "warmup" and 5 * ours == recipe.get("steps"):
            why = "the paper's share of the schedule (20 %) at our step count"
        rows.append(Deviation(LABELS[field], _show(field, ours), _show(field, paper), why))
    if truncated_from is not None:
        rows.append(Deviation("one training per L", f"the first vectors of an L = {truncated_from} training",
                              "not stated (presumably one per L)",
                              "truncation drafted as well as separate trainings (results/trained/comparison.json)"))
    if recipe.get("prompts", "windows") != "windows":  # sets trained before the option: prompts ending anywhere
        rows.append(Deviation("self-distillation prompts", "each ends after a function's docstring",
                              "not applicable (corpus text)",
                              "extension: a HumanEval prompt ends there, so the drafts learn to start a function body"))
    if corpus is not None:
        paper_data = {"code": "The Stack, Python", "text": "English Wikipedia"}.get(corpus, "not stated")
        ours = {"code": "the standard library's Python files", "text": "pydoc's prose about Python"}.get(corpus, corpus)
        rows.append(Deviation("corpus", ours, paper_data, "offline: shipped with every Python install"))
    for field in NOT_STATED:
        if field in recipe:
            rows.append(Deviation(LABELS[field], _show(field, recipe[field]), "not stated", "our choice"))
    return rows


def deviations_table(recipe, **kwargs) -> str:
    """``deviations`` as a Markdown table: setting | ours | the paper | why."""
    rows = deviations(recipe, **kwargs)
    lines = ["| setting | ours | the paper | why |", "|---|---|---|---|"]
    lines += [f"| {r.setting} | {r.ours} | {r.paper} | {r.why} |" for r in rows]
    return "\n".join(lines)
