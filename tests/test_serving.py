"""Serving routes without an engine: the vLLM export (one embedding row holds the shared vector) and
the custom proposer's drafts (PaSS's drafting call, argmax), on tiny models."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import pass_ref
from pass_ref.serving import check_vllm_draft, export_vllm, spare_row
from pass_ref.serving.vllm import LookaheadProposer


class TinyTokenizer:
    """What the export reads from a tokenizer: its size, special ids, names; it saves a vocabulary file."""

    def __init__(self, size, special=(0, 1, 2, 3)):
        self.size, self.all_special_ids = size, list(special)
        self.bos_token_id, self.eos_token_id, self.pad_token_id, self.unk_token_id = 1, 2, None, 0
        self.added_tokens_decoder = {i: f"<s{i}>" for i in special}

    def __len__(self):
        return self.size

    padded_from = None  # ids from here on are "[PAD<id>]" placeholders (a GGUF conversion's padded vocabulary)

    def convert_ids_to_tokens(self, i):
        return f"[PAD{i}]" if self.padded_from is not None and i >= self.padded_from else f"<s{i}>"

    def save_pretrained(self, out):
        (out / "vocab.json").write_text(json.dumps({f"t{i}": i for i in range(self.size)}))


@pytest.fixture
def tiny():
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=16, seed=0, dtype=torch.float32)
    model.config.tie_word_embeddings = True
    model.lm_head.weight = model.model.embed_tokens.weight  # tied, like SmolLM2
    return model


def test_spare_row_prefers_unused_rows_then_a_special_token(tiny):
    assert spare_row(tiny, TinyTokenizer(30))[0] == 30  # rows 30, 31 belong to no token
    row, reason = spare_row(tiny, TinyTokenizer(32))
    assert row == 3 and "gave up the added token" in reason  # not BOS (1), EOS (2) or UNK (0)
    with pytest.raises(ValueError, match="no unused embedding row"):
        spare_row(tiny, TinyTokenizer(32, special=(0, 1, 2)))
    padded = TinyTokenizer(32)
    padded.padded_from = 29  # tokens 29..31 are placeholders: the first of them is free
    row, reason = spare_row(tiny, padded)
    assert row == 29 and "3 padding rows" in reason
    padded.padded_from = 32  # none: back to giving up an added token
    assert spare_row(tiny, padded)[0] == 3


def test_export_puts_the_shared_vector_in_one_row_and_nothing_else_changes(tiny, tmp_path):
    """The draft's row pard_token is the vector; every other input row and the whole output layer are the base's."""
    from transformers import AutoModelForCausalLM

    shared = pass_ref.LookaheadEmbeddings.from_mean_embedding(tiny, 3)
    with torch.no_grad():
        shared.weight.copy_(torch.randn(1, 16, generator=torch.Generator().manual_seed(0)).expand(3, 16))
    report = export_vllm(shared, tiny, TinyTokenizer(32), tmp_path / "draft")
    draft = AutoModelForCausalLM.from_pretrained(tmp_path / "draft")
    row = report.pard_token
    assert draft.config.pard_token == row == 3 and report.untied and not draft.config.tie_word_embeddings
    table, base = draft.get_input_embeddings().weight, tiny.get_input_embeddings().weight
    assert torch.equal(table[row], shared.weight[0])
    assert torch.equal(table[:row], base[:row]) and torch.equal(table[row + 1:], base[row + 1:])
    assert torch.equal(draft.get_output_embeddings().weight, base)  # untied: the output row is the original
    assert "parallel_drafting" in (tmp_path / "draft" / "README.md").read_text()
    tiny.save_pretrained(tmp_path / "target")
    assert check_vllm_draft(tmp_path / "target", tmp_path / "draft", 4)["num_lookahead"] == 3
    with pytest.raises(ValueError, match="K must be in 1..4"):
        check_vllm_draft(tmp_path / "target", tmp_path / "draft", 5)
    other = pass_ref.tiny_llama(vocab_size=40, hidden_size=16, seed=0)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="vocabulary sizes differ"):
        check_vllm_draft(tmp_path / "other", tmp_path / "draft", 2)


def test_export_refuses_what_parallel_drafting_cannot_run(tiny, tmp_path):
    distinct = pass_ref.LookaheadEmbeddings.from_random(tiny, 3, seed=1)
    with pytest.raises(ValueError, match="distinct look-ahead vectors"):
        export_vllm(distinct, tiny, TinyTokenizer(32), tmp_path / "a")
    with pytest.raises(ValueError, match="deep"):
        export_vllm(pass_ref.LookaheadEmbeddings.from_mean_embedding(tiny, 3).make_deep(tiny), tiny, TinyTokenizer(32), tmp_path / "b")
    elsewhere = pass_ref.LookaheadEmbeddings.from_mean_embedding(pass_ref.tiny_llama(vocab_size=32, hidden_size=16, seed=5), 3)
    with pytest.raises(ValueError, match="differ from this model"):
        export_vllm(elsewhere, tiny, TinyTokenizer(32), tmp_path / "c")


def _config(model_dir, k):
    return SimpleNamespace(speculative_config=SimpleNamespace(num_speculative_tokens=k),
                           model_config=SimpleNamespace(model=str(model_dir), dtype=torch.float64, max_model_len=64))


def test_proposer_drafts_the_drafting_calls_argmax_and_reuses_its_caches(tmp_path):
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=16, seed=0, dtype=torch.float64)
    model.save_pretrained(tmp_path / "model")
    la = pass_ref.LookaheadEmbeddings.from_random(model, 3, seed=1)
    la.save_pretrained(tmp_path / "la")
    proposer = LookaheadProposer(_config(tmp_path / "model", 4), lookahead_dir=str(tmp_path / "la"))
    proposer.load_model()
    rows = np.zeros((3, 64), dtype=np.int64)
    contexts = [[1, 2, 3, 4, 5], [7, 7, 9], [3, 1]]
    for i, c in enumerate(contexts):
        rows[i, : len(c)] = c
    drafts = proposer.propose([[5], [9], []], np.array([5, 3, 2]), rows)
    for c, d in zip(contexts[:2], drafts):
        expected = pass_ref.lookahead_logits(model, la, torch.tensor([c]))[: proposer.k].argmax(-1).tolist()
        assert d == expected and len(d) == 4
    assert drafts[2] == []  # a row that sampled nothing gets no drafts
    rows[1, 3:5] = [4, 6]  # request 1 moved on by two tokens, and now sits in row 0
    swapped = rows[[1, 0]]
    sizes_before = [len(c.call_sizes) for c in proposer.caches.values()]
    again = proposer.propose([[6], [5]], np.array([5, 5]), swapped)
    assert again[0] == pass_ref.lookahead_logits(model, la, torch.tensor([[7, 7, 9, 4, 6]]))[:4].argmax(-1).tolist()
    cache = next(c for c in proposer.caches.values() if c.tokens[:3] == [7, 7, 9])
    assert cache.call_sizes[-1] == 2 + 3  # only the two new tokens, then the 3 vectors: the prefix came from the cache
    assert len(proposer.caches) == 2 and sum(sizes_before) == 2


def test_proposer_refuses_more_drafts_than_the_set_can_make(tmp_path):
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=16, seed=0)
    model.save_pretrained(tmp_path / "model")
    pass_ref.LookaheadEmbeddings.from_random(model, 2, seed=1).save_pretrained(tmp_path / "la")
    with pytest.raises(ValueError, match="K must be in 1..3"):
        LookaheadProposer(_config(tmp_path / "model", 4), lookahead_dir=str(tmp_path / "la")).load_model()
    with pytest.raises(ValueError, match="PASS_REF_LOOKAHEAD"):
        LookaheadProposer(_config(tmp_path / "model", 2))


def test_routes_are_checked_before_an_engine_starts(tmp_path):
    """The custom route refuses a set made for another model and K beyond L + 1; configs name vLLM's methods."""
    from pass_ref.serving.engine import check_route, speculative_config

    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=16, seed=0)
    model.save_pretrained(tmp_path / "base")
    pass_ref.LookaheadEmbeddings.from_random(model, 2, seed=1).save_pretrained(tmp_path / "la")
    check_route("custom", tmp_path / "base", k=3, lookahead_dir=tmp_path / "la")
    with pytest.raises(ValueError, match="K must be in 1..3"):
        check_route("custom", tmp_path / "base", k=4, lookahead_dir=tmp_path / "la")
    other = pass_ref.tiny_llama(vocab_size=40, hidden_size=16, seed=0)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="vocab_size"):
        check_route("custom", tmp_path / "other", k=2, lookahead_dir=tmp_path / "la")
    assert speculative_config("plain", k=4) is None
    assert speculative_config("parallel", k=4, draft_dir="D") == {
        "method": "draft_model", "model": "D", "num_speculative_tokens": 4, "parallel_drafting": True}
    assert speculative_config("custom", k=2, lookahead_dir=tmp_path / "la")["model"] == "pass_ref.serving.vllm.LookaheadProposer"
    with pytest.raises(ValueError, match="route must be one of"):
        speculative_config("eagle", k=2)


def test_results_page_renders_the_serving_tables(tmp_path):
    from pass_ref.experiments.results_serving import shared_section, vllm_section

    (tmp_path / "serving").mkdir()
    rows = [{"set": s, "prompts": "HumanEval", "acceptance": [0.2, 0.05], "accepted_per_iteration": 0.25, "tokens_per_call": 1.12}
            for s in ("distinct (paper recipe)", "shared (same recipe, --shared)")]
    (tmp_path / "serving" / "shared_ablation.json").write_text(json.dumps(
        {"model": "m", "L": 2, "prompts_per_set": 3, "new_tokens": 8, "command": "c", "shared_recipe": "r", "rows": rows,
         "shared_keeps": {"HumanEval": 1.0}}))
    (tmp_path / "serving" / "vllm_bench.json").write_text(json.dumps(
        {"model": "m", "dtype": "float32", "k": 4, "prompts": 2, "max_tokens": 8, "vllm": "0.32.0", "command": "c",
         "machine": {"cpu": "X", "threads": 2, "flags": {"avx512_bf16": True}},
         "rows": [{"route": "plain", "tokens_per_s": 10.0, "vs_plain": 1.0, "mean_acceptance_length": 1.0,
                   "acceptance_per_position": [], "same_tokens_as_plain": True}]}))
    assert "keeps HumanEval: 100%" in "\n".join(shared_section(tmp_path))
    assert "| plain | 10.0 | 1.00× | 1.00 | – | yes |" in vllm_section(tmp_path, lambda record: record["machine"]["cpu"])


def test_cache_keyword_follows_the_transformers_release():
    """transformers 5.2x takes the KV cache as `cache=`; the release vLLM's CPU build pins takes `past_key_values=`."""
    from pass_ref.cache import cache_keyword

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return None

    assert cache_keyword(Old()) == "past_key_values"
    assert cache_keyword(pass_ref.tiny_llama()) == "cache"
