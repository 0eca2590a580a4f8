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
plain vectors). Real positions never see them: a hook adds them to the last M positions
of a call whose last M inputs are look-ahead vectors, and causal attention keeps real
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

import contextlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .models import embedding_probe, model_identity

WEIGHTS_NAME = "lookahead.safetensors"
CONFIG_NAME = "lookahead_config.json"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
_PROBE_TOLERANCE = 0.02  # relative L2 distance; bfloat16 vs float32 copies differ by ~0.3 %


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
    def num_parameters(self) -> int:
        """L x d_emb, plus num_layers x L x d_emb for deep look-ahead."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        deep = f", deep over {self.layer_weight.shape[0]} layers" if self.deep else ""
        return f"L={self.num_lookahead}, d_emb={self.hidden_size}{deep}, base={self.base_model.get('name_or_path')!r}"

    def make_deep(self, model) -> "LookaheadEmbeddings":
        """Add zero-initialised per-layer vectors (drafts are unchanged until they are trained)."""
        layers = _decoder_layers(model)
        if self.deep:
            raise ValueError("these look-ahead embeddings are already deep")
        self.layer_weight = torch.nn.Parameter(torch.zeros(len(layers), *self.weight.shape, device=self.weight.device))
        self.metadata["deep"] = True
        return self

    @contextlib.contextmanager
    def applied(self, model, slots: torch.Tensor):
        """Inside the block, every decoder layer adds ``layer_weight[layer, slots]`` to the
        last ``len(slots)`` positions of its input hidden states (a no-op if not deep).

        ``slots`` (M,) says which [LA]_i sits at each of those positions: ``arange(k)`` for
        a drafting call, ``arange(K * L) % L`` for K training blocks. Callers put the
        look-ahead inputs last, so real positions are never touched.
        """
        if not self.deep or slots.shape[0] == 0:
            yield
            return
        layers = _decoder_layers(model)
        if len(layers) != self.layer_weight.shape[0]:
            raise ValueError(f"deep look-ahead has {self.layer_weight.shape[0]} layers, the model {len(layers)}")
        M = slots.shape[0]
        handles = []

        def make_hook(index: int):
            def hook(module, args, kwargs):
                hidden = args[0] if args else kwargs["hidden_states"]  # (B, T, D)
                delta = self.layer_weight[index, slots.to(self.layer_weight.device)].to(hidden.dtype)  # (M, D)
                shifted = torch.cat([hidden[:, :-M], hidden[:, -M:] + delta.to(hidden.device)], dim=1)
                if args:
                    return (shifted, *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": shifted}

            return hook

        try:
            for i, layer in enumerate(layers):
                handles.append(layer.register_forward_pre_hook(make_hook(i), with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()

    @classmethod
    def from_token(cls, model, num_lookahead: int, token_id: int | None = None) -> "LookaheadEmbeddings":
        """The paper's initialisation: every ``[LA]_i`` is one token's input embedding.

        ``token_id=None`` takes the model's UNK token (``config.unk_token_id``; for
        SmolLM2 that is id 0, ``<|endoftext|>``). A model with no UNK token falls back
        to the mean of all token embeddings, which starts training at a much lower loss (``docs/RESULTS.md``).
        Untrained, this is the paper's "[UNK] look-ahead" baseline.
        """
        check_num_lookahead(num_lookahead)
        table = model.get_input_embeddings().weight.detach()  # (V, D)
        if token_id is None:
            token_id = getattr(model.config, "unk_token_id", None)
        if token_id is None:
            return cls.from_mean_embedding(model, num_lookahead)
        if not 0 <= int(token_id) < table.shape[0]:
            raise ValueError(f"token_id {token_id} is outside the vocabulary of {table.shape[0]}")
        weight = table[int(token_id)].float().cpu().expand(num_lookahead, -1).clone()  # (L, D)
        metadata = {"init": "token", "token_id": int(token_id), "trained": False}
        return cls(weight, base_model=model_identity(model), base_probe=embedding_probe(model), metadata=metadata)

    @classmethod
    def from_mean_embedding(cls, model, num_lookahead: int) -> "LookaheadEmbeddings":
        """Every ``[LA]_i`` = the mean of all token input embeddings.

        Our default training start: on SmolLM2-135M the UNK start has a look-ahead loss of
        about 11 (worse than uniform, 10.8) and 150 steps of the paper's recipe barely
        move it, while the mean embedding starts near 8 (README, "Training").
        """
        check_num_lookahead(num_lookahead)
        table = model.get_input_embeddings().weight.detach().float().cpu()  # (V, D)
        weight = table.mean(dim=0).expand(num_lookahead, -1).clone()  # (L, D)
        return cls(weight, base_model=model_identity(model), base_probe=embedding_probe(model), metadata={"init": "mean_embedding", "trained": False})

    @classmethod
    def from_random(cls, model, num_lookahead: int, *, seed: int = 0) -> "LookaheadEmbeddings":
        """Random vectors at the scale of the token embeddings: N(mean, std) per coordinate.

        A control for evaluations (trained vs [UNK] vs random); never a training start.
        """
        check_num_lookahead(num_lookahead)
        table = model.get_input_embeddings().weight.detach().float().cpu()  # (V, D)
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(num_lookahead, table.shape[1], generator=generator)  # (L, D)
        weight = table.mean(dim=0) + noise * table.std(dim=0)
        return cls(weight, base_model=model_identity(model), base_probe=embedding_probe(model), metadata={"init": "random", "seed": seed, "trained": False})

    def truncated(self, k: int) -> "LookaheadEmbeddings":
        """The first k vectors. Attention is causal, so they draft exactly as inside the full set."""
        check_num_lookahead(k)
        if k > self.num_lookahead:
            raise ValueError(f"cannot keep {k} of {self.num_lookahead} look-ahead embeddings")
        metadata = {**self.metadata, "truncated_from": self.num_lookahead}
        deep = self.layer_weight.detach()[:, :k].clone() if self.deep else None
        return LookaheadEmbeddings(self.weight.detach()[:k].clone(), base_model=self.base_model, base_probe=self.base_probe, metadata=metadata, layer_weight=deep)

    def check_compatible(self, model) -> None:
        """Raise ``ValueError`` unless these vectors were made for ``model``."""
        identity = model_identity(model)
        if identity["hidden_size"] != self.hidden_size:
            raise ValueError(
                f"look-ahead embeddings have width {self.hidden_size} but the model's embeddings "
                f"have width {identity['hidden_size']}"
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

    def drafting_inputs(self, model, k: int) -> torch.Tensor:
        """(k, D) vectors ``[LA]_1..[LA]_k`` in the model's embedding dtype and device."""
        table = model.get_input_embeddings().weight
        return self.weight[:k].to(dtype=table.dtype, device=table.device)

    def recipe_name(self) -> str:
        """"paper" (L input vectors, corpus targets), "extended" (ours) or "untrained"."""
        recipe = self.metadata.get("recipe")
        if not self.metadata.get("trained") or not isinstance(recipe, dict):
            return "untrained" if not self.metadata.get("trained") else "unknown"
        paper = not self.deep and recipe.get("targets", "data") == "data" and recipe.get("data", "corpus") == "corpus"
        return "paper" if paper else "extended"

    def model_card(self) -> str:
        """A Hub-style ``README.md``: base model, recipe, L, parameters, measured acceptance, loading."""
        base = self.base_model.get("name_or_path") or "unknown"
        m = self.metadata
        lines = ["---", "library_name: pass-ref", f"base_model: {base}", "tags:", "  - speculative-decoding",
                 "  - pass", "  - lookahead-embeddings", "---", "",
                 f"# PaSS look-ahead embeddings for {base} (L = {self.num_lookahead})", "",
                 "Learned input vectors that let a frozen language model draft L future tokens in one forward pass "
                 "(PaSS: Parallel Speculative Sampling, Monea, Joulin and Grave, 2023); speculative sampling then "
                 "verifies the drafts, so generation follows the base model's distribution exactly.", "",
                 "| | |", "|---|---|", f"| base model | {base} ({self.base_model.get('model_type')}, width {self.hidden_size}) |",
                 f"| L (look-ahead tokens) | {self.num_lookahead} |",
                 f"| recipe | {self.recipe_name()}{' (deep look-ahead in every layer)' if self.deep else ''} |",
                 f"| parameters | {self.num_parameters:,} |"]
        if "corpus" in m and isinstance(m["corpus"], dict):
            lines.append(f"| training corpus | {m['corpus'].get('domain')} ({m['corpus'].get('documents')} documents) |")
        if "recipe" in m and isinstance(m["recipe"], dict):
            r = m["recipe"]
            lines.append(f"| training | {r.get('steps')} steps, batch {r.get('batch_size')}, lr {r.get('lr')}, init {r.get('init')} |")
        if "truncated_from" in m:
            lines.append(f"| made from | the first {self.num_lookahead} vectors of an L = {m['truncated_from']} training |")
        greedy = m.get("heldout_greedy")
        if isinstance(greedy, dict):
            acc = " ".join(f"{a:.2f}" for a in greedy["acceptance"])
            lines.append(f"| measured (greedy, {greedy.get('prompts')} held-out prompts) | acceptance per [LA]_i {acc}; "
                         f"{greedy['tokens_per_call']:.3f} tokens per model call |")
        else:
            lines.append("| measured | nothing recorded with these vectors |")
        lines += ["", "## Load and decode", "", "```python", "import pass_ref", "",
                  _load_line(base),
                  "lookahead = pass_ref.LookaheadEmbeddings.from_pretrained(\"THIS_FOLDER_OR_HUB_ID\", model=model)",
                  "ids = tokenizer(\"def fibonacci(n):\", return_tensors=\"pt\").input_ids",
                  "out = model.generate(ids, custom_generate=pass_ref.hf.pass_decoding, lookahead=lookahead, max_new_tokens=64)",
                  "```", "", "Loading onto a model whose embeddings differ raises an error instead of drafting badly.", ""]
        return "\n".join(lines)

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
        config = {
            "format_version": FORMAT_VERSION,
            "num_lookahead": self.num_lookahead,
            "hidden_size": self.hidden_size,
            "base_model": self.base_model,
            "metadata": self.metadata,
        }
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (directory / CARD_NAME).write_text(self.model_card(), encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        model=None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
    ) -> "LookaheadEmbeddings":
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
        lookahead = cls(
            weight, base_model=config["base_model"], base_probe=tensors["base_probe"], metadata=config.get("metadata"),
            layer_weight=tensors.get("layer_weight"),
        )
        if model is not None:
            lookahead.check_compatible(model)
        return lookahead


def _load_line(base: str) -> str:
    from .models import DEFAULT_GGUF

    if base == Path(DEFAULT_GGUF).stem:
        return "model, tokenizer = pass_ref.load_model()  # the default SmolLM2-135M-Instruct, shipped offline"
    return f"model, tokenizer = pass_ref.load_model({base!r})"


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


def _decoder_layers(model):
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise TypeError(f"{type(model).__name__} has no `model.layers`: deep look-ahead needs a decoder-only model")
    return layers[: model.config.num_hidden_layers]


def check_num_lookahead(num_lookahead) -> None:
    """L must be a positive integer."""
    if isinstance(num_lookahead, bool) or not isinstance(num_lookahead, int):
        raise TypeError(f"the number of look-ahead tokens must be an int, got {type(num_lookahead).__name__}")
    if num_lookahead < 1:
        raise ValueError(f"the number of look-ahead tokens L must be >= 1, got {num_lookahead}")
