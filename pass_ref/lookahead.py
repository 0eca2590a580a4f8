"""Look-ahead embeddings: the only parameters PaSS adds (``docs/paper.md``).

``LookaheadEmbeddings`` holds L vectors ``[LA]_1 .. [LA]_L`` of the model's embedding
width (L x d_emb parameters). Appended after the input, the model's output at
``[LA]_i`` is the look-ahead distribution p_LA,i: a guess for the token i+1 places
ahead of the last real token. Attention is causal, so the output at ``[LA]_i`` never
depends on ``[LA]_j`` for j > i: the first k vectors of a set draft exactly as they do
inside the full set.

**Deep look-ahead** (our extension, not in the paper): optionally, learned vectors added to the
hidden state entering every decoder layer, at the look-ahead positions only
(``layer_weight``, (num_layers, L, D), zero at the start: then it drafts exactly like the
plain vectors). Real positions never see them: they are added to the look-ahead
positions only (``pass_ref.layer_inputs``), and causal attention keeps real
positions from attending to those, so real-token logits are bit-identical to the frozen
model's (tested) and verification stays exact.

Files (``save_pretrained``, a Hub-style folder): ``lookahead.safetensors`` with the (L, D)
weight (and the deep ``layer_weight`` if any) and a small probe of the base model's
embedding matrix; ``lookahead_config.json`` with L, the base model's identity and how the
vectors were made or trained; a model card ``README.md``. ``from_pretrained`` takes that
folder or a Hub repository id. Loading onto another model raises ``ValueError`` instead
of silently mis-drafting.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .checks import check_L, positive_int
from .layer_inputs import added_to_layers, decoder_layers

WEIGHTS_NAME = "lookahead.safetensors"
CONFIG_NAME = "lookahead_config.json"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
DEFAULT_BASE = "SmolLM2-135M-Instruct.Q4_1"  # the name load_model() gives its default model
_CARD = """---
library_name: pass-ref
base_model: {base}
tags:
  - speculative-decoding
  - pass
  - lookahead-embeddings
---

# PaSS look-ahead embeddings for {base} (L = {L})

Learned input vectors that let a frozen language model draft L future tokens in one forward pass (PaSS: Parallel \
Speculative Sampling, Monea, Joulin and Grave, 2023); speculative sampling then verifies the drafts, so generation \
follows the base model's distribution exactly.

| | |
|---|---|
{rows}

## Load and decode

```python
import pass_ref

{load}
lookahead = pass_ref.LookaheadEmbeddings.from_pretrained("THIS_FOLDER_OR_HUB_ID", model=model)
ids = tokenizer("def fibonacci(n):", return_tensors="pt").input_ids
out = model.generate(ids, custom_generate=pass_ref.hf.pass_decoding, lookahead=lookahead, max_new_tokens=64)
```

Loading onto a model whose embeddings differ raises an error instead of drafting badly.
"""
_PROBE_TOLERANCE = 0.02  # relative L2 distance: tolerates a bfloat16 copy of the weights, not other weights


class NoUnkTokenWarning(UserWarning):
    """The model has no UNK token, so the paper's [UNK] start became the mean embedding."""


class LookaheadEmbeddings(torch.nn.Module):
    """L learned input vectors ``[LA]_1..[LA]_L`` for one base model.

    Args:
        weight: (L, D) initial values.
        base_model: the identity dict from ``pass_ref.models.model_identity``.
        base_probe: (R, W) probe from ``pass_ref.models.embedding_probe``.
        metadata: free-form JSON-able facts (initialisation, corpus, steps, ...).
    """

    def __init__(
        self,
        weight: torch.Tensor,
        *,
        base_model: dict,
        base_probe: torch.Tensor,
        metadata: dict | None = None,
        layer_weight: torch.Tensor | None = None,
    ):
        super().__init__()
        if weight.ndim != 2 or weight.shape[0] < 1:
            raise ValueError(f"weight must be (L, D) with L >= 1, got shape {tuple(weight.shape)}")
        self.weight = torch.nn.Parameter(weight.detach().float().clone())  # (L, D), trained in float32
        self.layer_weight = None  # (num_layers, L, D) deep look-ahead vectors, or None
        if layer_weight is not None:
            if layer_weight.ndim != 3 or tuple(layer_weight.shape[1:]) != tuple(weight.shape):
                raise ValueError(f"layer_weight must be (num_layers, L, D) = (*, {tuple(weight.shape)}), got {tuple(layer_weight.shape)}")
            self.layer_weight = torch.nn.Parameter(layer_weight.detach().float().clone())
        self.base_model = dict(base_model)
        self.register_buffer("base_probe", base_probe.detach().float().cpu().clone(), persistent=False)
        self.metadata = dict(metadata or {})

    @property
    def num_lookahead(self) -> int:
        """L, the number of look-ahead tokens."""
        return self.weight.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.weight.shape[1]

    @property
    def deep(self) -> bool:
        """True if per-layer look-ahead vectors are added inside the model."""
        return self.layer_weight is not None

    @property
    def shared(self) -> bool:
        """True if every [LA]_i is the same vector and nothing is added inside the layers: the
        variant an engine that fills every look-ahead slot with one token's embedding can run."""
        return not self.deep and bool((self.weight == self.weight[:1]).all())

    @property
    def num_parameters(self) -> int:
        """L x d_emb, plus num_layers x L x d_emb for deep look-ahead."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        deep = f", deep over {self.layer_weight.shape[0]} layers" if self.deep else (", one shared vector" if self.shared else "")
        return f"L={self.num_lookahead}, d_emb={self.hidden_size}{deep}, base={self.base_model.get('name_or_path')!r}"

    def make_deep(self, model) -> "LookaheadEmbeddings":
        """Add zero-initialised per-layer vectors (drafts are unchanged until they are trained)."""
        layers = decoder_layers(model)
        if self.deep:
            raise ValueError("these look-ahead embeddings are already deep")
        self.layer_weight = torch.nn.Parameter(torch.zeros(len(layers), *self.weight.shape, device=self.weight.device))
        self.metadata["deep"] = True
        return self

    def layer_delta(self, slots: torch.Tensor) -> torch.Tensor | None:
        """(num_layers, M, D) deep vectors for look-ahead inputs at ``slots`` (None if not deep).

        ``slots`` (M,) says which [LA]_i sits at each look-ahead input: ``arange(k)`` for a
        drafting call, ``arange(K * L) % L`` for K training blocks. Differentiable.
        """
        if not self.deep or slots.shape[0] == 0:
            return None
        return self.layer_weight[:, slots.to(self.layer_weight.device)]

    def applied(self, model, slots: torch.Tensor):
        """A context in which every decoder layer adds ``layer_weight[layer, slots]`` to the
        last ``len(slots)`` positions of its input hidden states (a no-op if not deep).

        Callers put the look-ahead inputs last, so real positions are never touched.
        """
        return added_to_layers(model, self.layer_delta(slots))  # checks the layer count (ValueError)

    @classmethod
    def from_token(cls, model, num_lookahead: int, token_id: int | None = None) -> "LookaheadEmbeddings":
        """The paper's initialisation: every ``[LA]_i`` is one token's input embedding.

        ``token_id=None`` takes the model's UNK token (``config.unk_token_id``; for
        SmolLM2 that is id 0, ``<|endoftext|>``, its document separator: a frequent token,
        not an unused one). A model with no UNK token falls back to the mean of all token
        embeddings (``from_mean_embedding``), with a ``NoUnkTokenWarning`` and
        ``metadata["fallback"]`` saying so. Untrained, this is the paper's "[UNK] look-ahead" baseline.
        """
        check_L(num_lookahead)
        table = model.get_input_embeddings().weight.detach()  # (V, D)
        if token_id is None:
            token_id = getattr(model.config, "unk_token_id", None)
        if token_id is None:
            warnings.warn(f"{type(model).__name__} has no UNK token (config.unk_token_id is None): the [UNK] start "
                          "falls back to the mean token embedding", NoUnkTokenWarning, stacklevel=2)
            lookahead = cls.from_mean_embedding(model, num_lookahead)
            lookahead.metadata["fallback"] = "no UNK token: the mean token embedding"
            return lookahead
        if not 0 <= int(token_id) < table.shape[0]:
            raise ValueError(f"token_id {token_id} is outside the vocabulary of {table.shape[0]}")
        weight = table[int(token_id)].float().cpu().expand(num_lookahead, -1)  # (L, D)
        return cls._for_model(model, weight, {"init": "token", "token_id": int(token_id)})

    @classmethod
    def from_mean_embedding(cls, model, num_lookahead: int) -> "LookaheadEmbeddings":
        """Every ``[LA]_i`` = the mean of all token input embeddings.

        Our training start: it begins at a lower look-ahead loss than the UNK token's
        embedding (the measured start losses are in ``docs/RESULTS.md``).
        """
        check_L(num_lookahead)
        table = model.get_input_embeddings().weight.detach().float().cpu()  # (V, D)
        return cls._for_model(model, table.mean(dim=0).expand(num_lookahead, -1), {"init": "mean_embedding"})  # (L, D)

    @classmethod
    def from_random(cls, model, num_lookahead: int, *, seed: int = 0) -> "LookaheadEmbeddings":
        """Random vectors at the scale of the token embeddings: N(mean, std) per coordinate.

        A control for evaluations (trained vs [UNK] vs random); never a training start.
        """
        check_L(num_lookahead)
        table = model.get_input_embeddings().weight.detach().float().cpu()  # (V, D)
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(num_lookahead, table.shape[1], generator=generator)  # (L, D)
        return cls._for_model(model, table.mean(dim=0) + noise * table.std(dim=0), {"init": "random", "seed": seed})

    @classmethod
    def _for_model(cls, model, weight: torch.Tensor, metadata: dict) -> "LookaheadEmbeddings":
        """Untrained vectors ``weight`` (L, D) made for ``model``."""
        return cls(weight, base_model=model_identity(model), base_probe=embedding_probe(model), metadata={**metadata, "trained": False})

    def truncated(self, k: int) -> "LookaheadEmbeddings":
        """The first k vectors. Attention is causal, so they draft exactly as inside the full set."""
        check_L(k)
        if k > self.num_lookahead:
            raise ValueError(f"cannot keep {k} of {self.num_lookahead} look-ahead embeddings")
        metadata = {**self.metadata, "truncated_from": self.num_lookahead}
        deep = self.layer_weight.detach()[:, :k].clone() if self.deep else None
        weight = self.weight.detach()[:k].clone()
        return LookaheadEmbeddings(weight, base_model=self.base_model, base_probe=self.base_probe, metadata=metadata, layer_weight=deep)

    def check_compatible(self, model) -> None:
        """Raise ``ValueError`` unless these vectors were made for ``model``."""
        identity = model_identity(model)
        if identity["hidden_size"] != self.hidden_size:
            raise ValueError(
                f"look-ahead embeddings have width {self.hidden_size} but the model's embeddings have width {identity['hidden_size']}"
            )
        for key in ("vocab_size", "num_hidden_layers", "model_type"):
            ours, theirs = self.base_model.get(key), identity[key]
            if ours is not None and theirs is not None and ours != theirs:
                raise ValueError(f"look-ahead embeddings were made for a model with {key}={ours}, not {theirs}")
        probe = embedding_probe(model, *self.base_probe.shape)
        distance = (probe - self.base_probe).norm() / self.base_probe.norm().clamp_min(1e-12)
        if distance > _PROBE_TOLERANCE:
            raise ValueError(
                f"look-ahead embeddings were made for {self.base_model.get('name_or_path')!r}, whose "
                f"embedding weights differ from this model's (relative distance {distance:.3f}); "
                "they would mis-draft. Train or load embeddings for this model."
            )

    def drafting_inputs(self, model, L: int | None = None) -> torch.Tensor:
        """(L, D) vectors ``[LA]_1..[LA]_L`` (None: all of them) in the model's embedding dtype and device.

        L = 0 gives (0, D): a drafting call with no look-ahead position (the last iteration of a budget).
        """
        L = self.num_lookahead if L is None else positive_int("num_lookahead", L, minimum=0)
        if L > self.num_lookahead:
            raise ValueError(f"num_lookahead={L} but only {self.num_lookahead} look-ahead embeddings exist")
        table = model.get_input_embeddings().weight
        return self.weight[:L].to(dtype=table.dtype, device=table.device)

    def measured_acceptance(self, L: int | None = None) -> list[float] | None:
        """Per-position acceptance P(a >= i), i = 1..L, measured greedily on held-out prompts after training
        (stored in the metadata), or None for a set that was never measured.

        The first L positions of a longer set keep their acceptance: look-ahead position i
        sees only positions 1..i, so its drafts do not depend on how many follow it.
        """
        L = self.num_lookahead if L is None else L
        values = (self.metadata.get("heldout_greedy") or {}).get("acceptance")
        if not values or len(values) < L or not 1 <= L <= self.num_lookahead:
            return None
        return [float(a) for a in values[:L]]

    def recipe_name(self) -> str:
        """"paper" (L input vectors, corpus targets), "extended" (ours) or "untrained"."""
        recipe = self.metadata.get("recipe")
        if not self.metadata.get("trained") or not isinstance(recipe, dict):
            return "untrained" if not self.metadata.get("trained") else "unknown"
        paper = not self.deep and recipe.get("targets", "data") == "data" and recipe.get("data", "corpus") == "corpus"
        return "paper" if paper else "extended"

    def stage_steps(self) -> list[int]:
        """The optimiser steps of each training stage, first first ([] for a set with no recorded recipe).

        A set trained on from another set's vectors keeps that set's record under
        ``metadata["first_stage"]`` (nested once per earlier stage); the last stage is this recipe's."""
        recipe = self.metadata.get("recipe")
        if not isinstance(recipe, dict) or recipe.get("steps") is None:
            return []
        stages, earlier = [recipe["steps"]], self.metadata.get("first_stage")
        while isinstance(earlier, dict) and earlier.get("trained_steps"):
            stages.insert(0, earlier["trained_steps"])
            earlier = earlier.get("first_stage")
        return stages

    def model_card(self) -> str:
        """A Hub-style ``README.md``: base model, recipe, L, parameters, measured acceptance, loading."""
        base, m = self.base_model.get("name_or_path") or "unknown", self.metadata
        rows = [f"| base model | {base} ({self.base_model.get('model_type')}, width {self.hidden_size}) |",
                f"| L (look-ahead tokens) | {self.num_lookahead} |",
                f"| recipe | {self.recipe_name()}{' (deep look-ahead in every layer)' if self.deep else ''} |",
                f"| parameters | {self.num_parameters:,} |"]
        if isinstance(m.get("corpus"), dict):
            rows.append(f"| training corpus | {m['corpus'].get('domain')} ({m['corpus'].get('documents')} documents) |")
        if isinstance(m.get("recipe"), dict):
            r = m["recipe"]
            stages = self.stage_steps() or [r.get("steps")]
            steps = " + ".join(map(str, stages)) + " steps"
            if len(stages) > 1:
                steps += f" ({len(stages)} stages, each from the previous one's vectors)"
            if r.get("prompts") == "functions":
                steps += f"; {'the last' if len(stages) > 1 else 'self-distilled'} on prompts ending after a function's docstring"
            rows.append(f"| training | {steps}, batch {r.get('batch_size')}, lr {r.get('lr')}, init {r.get('init')} |")
        if "truncated_from" in m:
            rows.append(f"| made from | the first {self.num_lookahead} vectors of an L = {m['truncated_from']} training |")
        g = m.get("heldout_greedy")
        rows.append(f"| measured (greedy, {g.get('prompts')} held-out prompts) | acceptance per [LA]_i "
                    f"{' '.join(f'{a:.2f}' for a in g['acceptance'])}; {g['tokens_per_call']:.3f} tokens per model call |"
                    if isinstance(g, dict) else "| measured | nothing recorded with these vectors |")
        load = ("model, tokenizer = pass_ref.load_model()  # the default SmolLM2-135M-Instruct, shipped offline"
                if base == DEFAULT_BASE else f"model, tokenizer = pass_ref.load_model({base!r})")
        return _CARD.format(base=base, L=self.num_lookahead, rows="\n".join(rows), load=load)

    def save_pretrained(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``lookahead.safetensors``, ``lookahead_config.json`` and a model card ``README.md``."""
        directory = Path(directory)
        if (directory / WEIGHTS_NAME).exists() and not overwrite:
            raise FileExistsError(f"{directory} already holds look-ahead embeddings (pass overwrite=True)")
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight.detach().float().cpu().contiguous(), "base_probe": self.base_probe.contiguous()}
        if self.deep:
            tensors["layer_weight"] = self.layer_weight.detach().float().cpu().contiguous()
        save_file(tensors, str(directory / WEIGHTS_NAME))
        config = {"format_version": FORMAT_VERSION, "num_lookahead": self.num_lookahead, "hidden_size": self.hidden_size,
                  "base_model": self.base_model, "metadata": self.metadata}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (directory / CARD_NAME).write_text(self.model_card(), encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, model=None, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None) -> "LookaheadEmbeddings":
        """Load embeddings saved by ``save_pretrained`` from a folder or a Hub repository id.

        A Hub id ("owner/name") is resolved with ``huggingface_hub``: offline (no network,
        ``HF_HUB_OFFLINE=1`` or ``local_files_only=True``) from the local Hub cache
        (``cache_dir``, default the Hub's). Checked against ``model`` if given.
        """
        directory = Path(name_or_path)
        if not directory.is_dir():
            directory = _hub_folder(str(name_or_path), revision, cache_dir, local_files_only)
        if not (directory / WEIGHTS_NAME).is_file() or not (directory / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME} and {CONFIG_NAME}")
        config = json.loads((directory / CONFIG_NAME).read_text())
        tensors = load_file(str(directory / WEIGHTS_NAME))
        weight = tensors["weight"]
        if tuple(weight.shape) != (config["num_lookahead"], config["hidden_size"]):
            raise ValueError(f"{directory}: weight shape {tuple(weight.shape)} disagrees with its config")
        lookahead = cls(weight, base_model=config["base_model"], base_probe=tensors["base_probe"], metadata=config.get("metadata"),
                        layer_weight=tensors.get("layer_weight"))
        if model is not None:
            lookahead.check_compatible(model)
        return lookahead


def _hub_folder(repo_id: str, revision, cache_dir, local_files_only) -> Path:
    """The snapshot folder of a Hub repository holding look-ahead files (downloads if allowed)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        folder = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                                   allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME])
    except HFValidationError:
        raise FileNotFoundError(f"{repo_id!r} is neither a folder nor a Hub repository id") from None
    except LocalEntryNotFoundError:
        raise FileNotFoundError(f"{repo_id!r} is not a folder and is not in the local Hub cache (offline)") from None
    return Path(folder)


def model_identity(model) -> dict:
    """What makes look-ahead embeddings fit a model: its name and shape."""
    config = model.config
    return {
        "name_or_path": str(getattr(config, "name_or_path", "") or ""),
        "model_type": getattr(config, "model_type", None),
        "hidden_size": int(model.get_input_embeddings().weight.shape[1]),
        "vocab_size": int(model.get_input_embeddings().weight.shape[0]),
        "num_hidden_layers": getattr(config, "num_hidden_layers", None),
    }


def embedding_probe(model, num_rows: int = 8, width: int = 32) -> torch.Tensor:
    """A small fingerprint of the input embedding matrix: (num_rows, width) float32 values.

    Rows are spread across the vocabulary; comparing probes tells whether two models share
    weights, while tolerating a change of dtype (a bfloat16 copy of the same weights).
    """
    weight = model.get_input_embeddings().weight  # (V, D)
    rows = torch.linspace(0, weight.shape[0] - 1, num_rows).long().to(weight.device)
    return weight[rows, :width].detach().float().cpu().clone()
