"""The shipped look-ahead embeddings, trained on the offline corpora for the default model.

    lookahead = pass_ref.load_lookahead("code", L=4)                       # the paper's recipe
    lookahead = pass_ref.load_lookahead("code", L=4, recipe="extended")    # this project's extension

Two recipes, each for ``"code"`` (the standard library's Python files) and ``"text"``
(pydoc's prose) and L = 2, 4, 6, 8 (``pass_ref/trained/<recipe>/<domain>-L<L>/``, with
metadata and training curve; reproduced by ``make train``):

- ``"paper"``: the paper's objective (corpus tokens as targets) and parameters (L input
  vectors of the embedding width, nothing else), started from the mean token embedding
  instead of the UNK token's (on SmolLM2 the UNK start has a loss above uniform's and
  barely moves within our budget; ``results/trained/unk_init_code_L8.json`` keeps that run), 150 steps
  instead of 10,000.
- ``"extended"``: ours, not in the paper: deep look-ahead (learned vectors added inside
  every decoder layer at the look-ahead positions), self-distilled training data and soft
  targets (``TrainConfig()``); (num_layers + 1) x L x d_emb parameters, higher acceptance.

In both, L = 2, 4, 6 are the first vectors of the L = 8 training (``truncated_from``):
``results/trained/comparison.json`` found truncation drafting as well as separate trainings.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checks import check_L
from .lookahead import LookaheadEmbeddings

TRAINED_DIR = Path(__file__).parent / "trained"
RESULTS_DIR = Path(__file__).parent.parent / "results" / "trained"  # their evaluations (a checkout, not the wheel)
DOMAINS = ("code", "text")  # the offline corpora: standard-library Python, pydoc prose
SHIPPED_L = (2, 4, 6, 8)
RECIPES = ("paper", "extended")


def trained_path(domain: str, num_lookahead: int, recipe: str = "paper") -> Path:
    """Directory of the shipped embeddings for ``domain`` ("code" or "text"), L and recipe."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    check_L(num_lookahead)
    return TRAINED_DIR / recipe / f"{domain}-L{num_lookahead}"


def load_lookahead(domain: str, L: int = 4, *, recipe: str = "paper", model=None) -> LookaheadEmbeddings:
    """Shipped trained look-ahead embeddings for the default model (SmolLM2-135M-Instruct).

    Args:
        domain: "code" (trained on standard-library Python) or "text" (pydoc prose).
        L: number of look-ahead tokens, one of 2, 4, 6, 8.
        recipe: "paper" (L input vectors, the paper's objective) or "extended" (ours: deep
            look-ahead, self-distilled data, soft targets).
        model: if given, check the embeddings were made for it (``ValueError`` otherwise).
    """
    path = trained_path(domain, L, recipe)
    if not path.is_dir():
        shipped = sorted(f"{p.parent.name}/{p.name}" for p in TRAINED_DIR.glob("*/*-L*")) if TRAINED_DIR.is_dir() else []
        raise FileNotFoundError(f"no shipped embeddings for domain={domain!r}, L={L}, recipe={recipe!r}; shipped: {shipped} (make train)")
    return LookaheadEmbeddings.from_pretrained(path, model=model)


def training_history(domain: str, L: int = 4, recipe: str = "paper") -> dict:
    """The training curve saved next to the shipped embeddings (loss and accuracy per step)."""
    path = trained_path(domain, L, recipe) / "history.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return json.loads(path.read_text())
