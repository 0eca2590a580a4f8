"""The shipped look-ahead embeddings: trained on the offline corpora for the default model.

    lookahead = pass_ref.load_lookahead("code", L=4)

They live inside the package (``pass_ref/trained/<domain>-L<L>/``, a few hundred KB each,
with their metadata and training curve) and are reproduced by ``make train``: one L = 8
training per domain with the default recipe (``TrainConfig()``: self-distilled data, soft
targets, deep look-ahead), and L = 2, 4, 6 as its first vectors (``truncated_from`` in the
metadata; the README shows truncation drafting as well as separate trainings).
"""

from __future__ import annotations

import json
from pathlib import Path

from .training.corpora import DOMAINS
from .lookahead import LookaheadEmbeddings, check_num_lookahead

TRAINED_DIR = Path(__file__).parent / "trained"
SHIPPED_L = (2, 4, 6, 8)


def trained_path(domain: str, num_lookahead: int) -> Path:
    """Directory of the shipped embeddings for ``domain`` ("code" or "text") and L."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    check_num_lookahead(num_lookahead)
    return TRAINED_DIR / f"{domain}-L{num_lookahead}"


def load_lookahead(domain: str, L: int = 4, *, model=None) -> LookaheadEmbeddings:
    """Shipped trained look-ahead embeddings for the default model (SmolLM2-135M-Instruct).

    Args:
        domain: "code" (trained on standard-library Python) or "text" (pydoc prose).
        L: number of look-ahead tokens, one of 2, 4, 6, 8.
        model: if given, check the embeddings were made for it (``ValueError`` otherwise).
    """
    path = trained_path(domain, L)
    if not path.is_dir():
        shipped = sorted(p.name for p in TRAINED_DIR.glob("*-L*")) if TRAINED_DIR.is_dir() else []
        raise FileNotFoundError(f"no shipped embeddings for domain={domain!r}, L={L}; shipped: {shipped} (make train)")
    return LookaheadEmbeddings.from_pretrained(path, model=model)


def training_history(domain: str, L: int = 4) -> dict:
    """The training curve saved next to the shipped embeddings (loss and accuracy per step)."""
    path = trained_path(domain, L) / "history.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return json.loads(path.read_text())
