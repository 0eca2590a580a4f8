"""The shipped look-ahead embeddings, trained on the offline corpora, found by model.

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

Other models have their own sets under ``pass_ref/trained/models/<model>/``; pass the model
and the set made for it is returned:

    qwen, _ = pass_ref.load_model("qwen2.5-coder-0.5b-instruct")
    lookahead = pass_ref.load_lookahead("code", L=4, recipe="extended", model=qwen)

Qwen2.5-Coder-0.5B-Instruct: code, L = 4, both recipes, trained on 2 CPU cores (``"paper"``:
trained until its held-out loss stopped improving, validated every 50 steps: best at step 850
of at most 1,000, the next three validations no better, 90 minutes; ``"extended"``: 100 steps
after self-distillation; each set's ``lookahead_config.json`` holds its full recipe, training
note and, for the paper set, the validation curve). A model with no
shipped set gets a ``FileNotFoundError`` naming the models that have one.
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
DEFAULT_MODEL = "smollm2-135m-instruct"
MODELS_DIR = TRAINED_DIR / "models"  # one folder per other model, named like its load_model alias


def shipped_models() -> list[str]:
    """The models with shipped sets: the default one and each folder of ``MODELS_DIR``."""
    others = sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir()) if MODELS_DIR.is_dir() else []
    return [DEFAULT_MODEL, *others]


def model_key(model) -> str:
    """The shipped-set folder a model would use: its name, lower case, without hub owner or GGUF quantisation."""
    name = str(getattr(model.config, "name_or_path", "") or "").replace("\\", "/").rstrip("/").split("/")[-1].lower()
    for key in shipped_models():
        if name == key or name.startswith(key + "."):  # "qwen2.5-coder-0.5b-instruct.q4_k_m" -> its alias
            return key
    return name


def trained_path(domain: str, num_lookahead: int, recipe: str = "paper", model_name: str = DEFAULT_MODEL) -> Path:
    """Directory of the shipped embeddings for ``domain`` ("code" or "text"), L, recipe and model."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    check_L(num_lookahead)
    root = TRAINED_DIR if model_name == DEFAULT_MODEL else MODELS_DIR / model_name
    return root / recipe / f"{domain}-L{num_lookahead}"


def load_lookahead(domain: str, L: int = 4, *, recipe: str = "paper", model=None) -> LookaheadEmbeddings:
    """Shipped trained look-ahead embeddings for ``model`` (default: SmolLM2-135M-Instruct).

    Args:
        domain: "code" (trained on standard-library Python) or "text" (pydoc prose).
        L: number of look-ahead tokens, one of 2, 4, 6, 8.
        recipe: "paper" (L input vectors, the paper's objective) or "extended" (ours: deep
            look-ahead, self-distilled data, soft targets).
        model: if given, the set made for this model (found by its name, ``model_key``), checked
            against it (``ValueError`` if its shape or weights differ). None: the default model's.
    """
    key = DEFAULT_MODEL if model is None else model_key(model)
    if key not in shipped_models():
        raise FileNotFoundError(f"no shipped look-ahead embeddings for model {key!r}; shipped for: {shipped_models()}. "
                                "Train one (`python -m pass_ref --model ... train`) and load it with LookaheadEmbeddings.from_pretrained")
    path = trained_path(domain, L, recipe, key)
    if not path.is_dir():
        root = path.parent.parent
        shipped = sorted(f"{p.parent.name}/{p.name}" for p in root.glob("*/*-L*") if p.parent.name in RECIPES)
        raise FileNotFoundError(f"no shipped embeddings for model {key!r}, domain={domain!r}, L={L}, recipe={recipe!r}; "
                                f"shipped for it: {shipped}")
    return LookaheadEmbeddings.from_pretrained(path, model=model)


def training_history(domain: str, L: int = 4, recipe: str = "paper") -> dict:
    """The training curve saved next to the shipped embeddings (loss and accuracy per step)."""
    path = trained_path(domain, L, recipe) / "history.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return json.loads(path.read_text())
