"""Checkpoints for serving engines: the base model as a Hugging Face folder, and a shared-vector
look-ahead set baked into one embedding row for vLLM's parallel drafting.

vLLM's ``draft_model`` method with ``parallel_drafting`` runs a draft model once per step on the
real tokens, the last sampled token and K - 1 slots that all hold one token id, read from the
draft's ``config.json`` (``pard_token``). That is PaSS's drafting call when every look-ahead
vector is the same and sits in that id's embedding row. ``export_vllm`` writes such a draft:
a copy of the base model whose row ``pard_token`` holds the shared vector.

Which row. A model whose embedding has rows beyond its tokenizer (Qwen2.5 pads 151,665 tokens
to 151,936 rows) gives up the first unused row: no text can ever produce it. A GGUF conversion
lists those rows as placeholder tokens ``[PAD151665]``..``[PAD151935]``; they count as unused. A model with none
(SmolLM2: 49,152 tokens, 49,152 rows) gives up its least useful special token, the last
added token that is not its BOS, EOS, PAD or UNK token (SmolLM2: ``<empty_output>``, id 16); the draft then reads the shared
vector wherever that token occurs in a context (worse drafts there, never a wrong output, as
the target verifies every draft). Tied input and output embeddings are untied in the draft, so
its output layer keeps the original row (one more vocabulary-sized matrix in the draft folder).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

EXPORT_FILE = "pass_ref_export.json"


@dataclass(frozen=True)
class ExportReport:
    """What ``export_vllm`` wrote: the row it used, why that row, and what it costs."""

    out_dir: str
    pard_token: int
    row_reason: str
    num_lookahead: int
    vocab_size: int
    untied: bool


def write_hf_folder(model, tokenizer, out_dir, *, dtype: torch.dtype | None = None) -> Path:
    """Save ``model`` and ``tokenizer`` as a plain Hugging Face folder (safetensors) an engine can load.

    A model loaded from a GGUF file is saved dequantised, in ``dtype`` (default: its own).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = model if dtype is None or dtype == model.dtype else copy.deepcopy(model).to(dtype)
    saved.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def padding_rows(tokenizer, rows: int) -> list[int]:
    """The rows at the end of the vocabulary that only hold placeholder tokens named ``[PAD<id>]``
    (how a GGUF conversion lists a padded embedding, e.g. Qwen2.5's 151,936 rows for 151,665 tokens)."""
    first = rows
    while first > 0 and tokenizer.convert_ids_to_tokens(first - 1) == f"[PAD{first - 1}]":
        first -= 1
    return list(range(first, rows))


def spare_row(model, tokenizer) -> tuple[int, str]:
    """The embedding row a shared look-ahead vector can take, and why that one (module docstring)."""
    rows = model.get_input_embeddings().weight.shape[0]
    if rows > len(tokenizer):
        return len(tokenizer), f"the first of {rows - len(tokenizer)} embedding rows no token uses"
    padding = padding_rows(tokenizer, rows)
    if padding:
        return padding[0], (f"the first of {len(padding)} padding rows at the end of the vocabulary "
                            f"({tokenizer.convert_ids_to_tokens(padding[0])!r}..): placeholders no text tokenizes to")
    keep = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id}
    added = sorted(getattr(tokenizer, "added_tokens_decoder", {}) or {})  # tokens added to the base vocabulary
    candidates = [i for i in added if i not in keep and 0 <= i < rows]
    candidates = candidates or [i for i in tokenizer.all_special_ids if i not in keep and 0 <= i < rows]
    if not candidates:
        raise ValueError(
            "the model has no unused embedding row and no special token to give up; pass token_id= "
            "to choose the row yourself (the draft reads the shared vector wherever that token occurs)"
        )
    row = max(candidates)
    return row, (f"no unused row ({rows} rows, {len(tokenizer)} tokens): gave up the added token "
                 f"{tokenizer.convert_ids_to_tokens(row)!r} (id {row}); where it occurs in a context the draft "
                 "reads the shared vector instead (worse drafts there, never a wrong output)")


def export_vllm(lookahead, model, tokenizer, out_dir, *, token_id: int | None = None,
                dtype: torch.dtype | None = None) -> ExportReport:
    """Write a vLLM ``draft_model`` folder with ``parallel_drafting`` for a shared-vector set.

    Args:
        lookahead: a ``LookaheadEmbeddings`` with one shared vector (``TrainConfig(shared=True)``);
            a set of distinct vectors is refused (serve it with ``pass_ref.serving.vllm``).
        model, tokenizer: the base model the set was trained for (checked).
        out_dir: the folder to write (must not exist or be empty).
        token_id: the row to overwrite (default: ``spare_row``).
        dtype: the saved weights' dtype (default: the model's).
    Returns:
        an ``ExportReport``; the folder holds the draft's weights and ``config.json`` with
        ``pard_token``, the tokenizer, ``README.md`` (model card) and ``pass_ref_export.json``.
    """
    if lookahead.deep:
        raise ValueError("this set adds vectors inside the layers (deep look-ahead); vLLM's parallel drafting reads "
                         "input embeddings only: use pass_ref.serving.vllm.LookaheadProposer instead")
    if not lookahead.shared:
        raise ValueError("this set has distinct look-ahead vectors; vLLM's parallel drafting fills every slot with one "
                         "token id, so only a shared-vector set exports (train with --shared), or serve the distinct "
                         "set with pass_ref.serving.vllm.LookaheadProposer")
    lookahead.check_compatible(model)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    table = model.get_input_embeddings().weight
    if token_id is None:
        row, reason = spare_row(model, tokenizer)
    else:
        if not 0 <= token_id < table.shape[0]:
            raise ValueError(f"token_id must be a row of the embedding (0..{table.shape[0] - 1}), got {token_id}")
        row, reason = token_id, f"chosen by the caller (id {token_id})"
    draft = copy.deepcopy(model)
    untied = bool(getattr(draft.config, "tie_word_embeddings", False))
    with torch.no_grad():
        if untied:  # keep the output layer's row: the draft still scores that token as the model does
            head = draft.get_output_embeddings()
            head.weight = torch.nn.Parameter(head.weight.detach().clone())
            draft.config.tie_word_embeddings = False
            if hasattr(draft.config, "get_text_config"):
                draft.config.get_text_config().tie_word_embeddings = False
        draft.get_input_embeddings().weight[row] = lookahead.weight[0].to(table.dtype)
    draft.config.pard_token = int(row)
    write_hf_folder(draft, tokenizer, out, dtype=dtype)
    report = ExportReport(str(out), int(row), reason, lookahead.num_lookahead, int(table.shape[0]), untied)
    (out / EXPORT_FILE).write_text(json.dumps({
        **asdict(report), "base_model": lookahead.base_model, "lookahead_metadata": lookahead.metadata,
    }, indent=2, default=str) + "\n")
    (out / "README.md").write_text(_model_card(lookahead, report))
    return report


_OUTPUT_NOTE = {True: "untied from the input embedding (the draft's output row is the original)",
                False: "separate from the input embedding in the base model"}


def _model_card(lookahead, report: ExportReport) -> str:
    base = lookahead.base_model.get("name_or_path")
    acceptance = (lookahead.metadata.get("heldout_greedy") or {}).get("acceptance")
    return f"""---
library_name: pass-ref
base_model: {base}
tags:
  - speculative-decoding
  - pass
  - vllm
---

# PaSS shared-vector draft for {base} (vLLM parallel drafting)

A copy of {base} whose embedding row {report.pard_token} holds a learned look-ahead vector (PaSS: Parallel
Speculative Sampling, Monea, Joulin and Grave, 2023, with one vector shared by all {report.num_lookahead}
look-ahead positions). vLLM runs it as a `draft_model` with `parallel_drafting`: one forward pass over the
context, the last sampled token and K - 1 slots holding token {report.pard_token} drafts K tokens; the target
model verifies them, so the output follows the target's distribution exactly.

| | |
|---|---|
| base model | {base} |
| look-ahead positions trained | {report.num_lookahead} (K drafts read K - 1 slots: serve with K <= {report.num_lookahead + 1}) |
| row | {report.pard_token}: {report.row_reason} |
| output layer | {_OUTPUT_NOTE[report.untied]} |
| held-out greedy acceptance per position | {acceptance} |

```python
from vllm import LLM
llm = LLM(model="BASE_MODEL_DIR", speculative_config={{
    "method": "draft_model", "model": "THIS_DIR", "num_speculative_tokens": {report.num_lookahead},
    "parallel_drafting": True}})
```

Made by `python -m pass_ref export-vllm`. The draft keeps its own KV cache and a second copy of the weights.
"""


def check_vllm_draft(target_dir, draft_dir, num_speculative_tokens: int) -> dict:
    """Refuse, before vLLM starts, a draft folder that would draft wrongly or not at all.

    Checks: the draft was written by ``export_vllm`` (``pard_token`` set), its vocabulary size
    equals the target's, its base model is the target's architecture, and the K - 1 look-ahead
    slots of K drafts do not exceed the L positions the set was trained for. Returns the export record.
    """
    target = json.loads((Path(target_dir) / "config.json").read_text())
    draft = json.loads((Path(draft_dir) / "config.json").read_text())
    record_path = Path(draft_dir) / EXPORT_FILE
    if "pard_token" not in draft or not record_path.exists():
        raise ValueError(f"{draft_dir} is not a pass-ref export (no pard_token / {EXPORT_FILE}): run export-vllm")
    record = json.loads(record_path.read_text())
    if draft.get("vocab_size") != target.get("vocab_size"):
        raise ValueError(f"vocabulary sizes differ: draft {draft.get('vocab_size')}, target {target.get('vocab_size')}")
    for key in ("hidden_size", "num_hidden_layers", "model_type"):
        if draft.get(key) != target.get(key):
            raise ValueError(f"the draft was exported from another model: {key} {draft.get(key)} vs target {target.get(key)}")
    L = record["num_lookahead"]
    if not 1 <= num_speculative_tokens <= L + 1:  # K drafts read K - 1 look-ahead slots after the last sampled token
        raise ValueError(f"num_speculative_tokens={num_speculative_tokens}: K drafts need K - 1 look-ahead slots and the "
                         f"set was trained for {L}, so K must be in 1..{L + 1}")
    return record
