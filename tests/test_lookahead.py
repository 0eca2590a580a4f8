"""Look-ahead embeddings: initialisation, save/load round trip, refusal to fit another model."""

import json

import pytest
import torch

import pass_ref
from pass_ref import LookaheadEmbeddings


def test_from_token_uses_unk_embedding():
    """The paper's initialisation copies the UNK embedding into every [LA]_i."""
    model = pass_ref.tiny_llama()
    model.config.unk_token_id = 3
    la = LookaheadEmbeddings.from_token(model, 4)
    table = model.get_input_embeddings().weight
    assert la.weight.shape == (4, table.shape[1])
    assert torch.allclose(la.weight, table[3].float().expand(4, -1))
    assert la.metadata == {"init": "token", "token_id": 3, "trained": False}


def test_from_token_falls_back_to_mean_embedding():
    """With no UNK token, every [LA]_i starts at the mean token embedding, and the fallback is said, not silent."""
    from pass_ref.lookahead import NoUnkTokenWarning

    model = pass_ref.tiny_llama()
    model.config.unk_token_id = None
    with pytest.warns(NoUnkTokenWarning, match="no UNK token"):
        la = LookaheadEmbeddings.from_token(model, 2)
    assert torch.allclose(la.weight[0], model.get_input_embeddings().weight.float().mean(0))
    assert la.metadata["init"] == "mean_embedding" and "no UNK token" in la.metadata["fallback"]


def test_save_and_load_round_trip(tmp_path, tiny_model):
    """save_pretrained / from_pretrained keep the vectors, L, identity and metadata."""
    la = LookaheadEmbeddings.from_token(tiny_model, 3, token_id=5)
    la.metadata["note"] = "unit test"
    la.save_pretrained(tmp_path / "la")
    config = json.loads((tmp_path / "la" / "lookahead_config.json").read_text())
    assert config["num_lookahead"] == 3 and config["base_model"]["hidden_size"] == 32
    loaded = LookaheadEmbeddings.from_pretrained(tmp_path / "la", model=tiny_model)
    assert torch.equal(loaded.weight, la.weight) and loaded.metadata["note"] == "unit test"
    out_a = pass_ref.pass_generate(tiny_model, la, [1, 2], max_new_tokens=10, temperature=1.0, seed=0)
    out_b = pass_ref.pass_generate(tiny_model, loaded, [1, 2], max_new_tokens=10, temperature=1.0, seed=0)
    assert torch.equal(out_a.new_tokens, out_b.new_tokens)


def test_save_refuses_to_overwrite(tmp_path, tiny_model):
    """An existing checkpoint is not silently replaced."""
    la = LookaheadEmbeddings.from_token(tiny_model, 2)
    la.save_pretrained(tmp_path)
    with pytest.raises(FileExistsError):
        la.save_pretrained(tmp_path)
    la.save_pretrained(tmp_path, overwrite=True)


def test_loading_onto_another_model_raises(tmp_path, tiny_model):
    """Other width, other depth or other weights: a clear ValueError."""
    LookaheadEmbeddings.from_token(tiny_model, 2).save_pretrained(tmp_path)
    for other, match in [
        (pass_ref.tiny_llama(hidden_size=16), "width"),
        (pass_ref.tiny_llama(num_layers=3), "num_hidden_layers"),
        (pass_ref.tiny_llama(seed=9), "differ"),
    ]:
        with pytest.raises(ValueError, match=match):
            LookaheadEmbeddings.from_pretrained(tmp_path, model=other)


def test_dtype_change_is_still_compatible(tmp_path, tiny_model):
    """The same weights in float32 accept embeddings made on the float64 copy."""
    LookaheadEmbeddings.from_token(tiny_model, 2).save_pretrained(tmp_path)
    LookaheadEmbeddings.from_pretrained(tmp_path, model=pass_ref.tiny_llama().float())


def test_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        LookaheadEmbeddings.from_pretrained(tmp_path / "nothing")


@pytest.mark.parametrize("L, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError)])
def test_bad_number_of_lookahead_tokens(tiny_model, L, error):
    with pytest.raises(error):
        LookaheadEmbeddings.from_token(tiny_model, L)


def test_truncated_draft_model_shares_weights(tiny_model):
    """The self-speculative draft keeps the first k layers and copies nothing."""
    draft = pass_ref.truncated_draft_model(tiny_model, 1)
    assert len(draft.model.layers) == 1 and len(tiny_model.model.layers) == 2
    assert draft.model.layers[0] is tiny_model.model.layers[0]
    assert draft.lm_head.weight.data_ptr() == tiny_model.lm_head.weight.data_ptr()
    ids = torch.tensor([[1, 2, 3]])
    assert draft(ids).logits.shape == tiny_model(ids).logits.shape
    assert not torch.allclose(draft(ids).logits, tiny_model(ids).logits)
    with pytest.raises(ValueError):
        pass_ref.truncated_draft_model(tiny_model, 3)


def test_truncated_set_drafts_like_the_full_set(tiny_model):
    """Causality: the first k of L vectors draft exactly as the full set used with num_lookahead=k."""
    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 4, seed=1)
    short = la.truncated(2)
    assert short.num_lookahead == 2 and short.metadata["truncated_from"] == 4
    a = pass_ref.pass_generate(tiny_model, la, [1, 2, 3], num_lookahead=2, max_new_tokens=20, temperature=1.0, seed=0, trace=True)
    b = pass_ref.pass_generate(tiny_model, short, [1, 2, 3], max_new_tokens=20, temperature=1.0, seed=0, trace=True)
    assert torch.equal(a.new_tokens, b.new_tokens)
    assert [r.accept_probs for r in a.trace] == [r.accept_probs for r in b.trace]
    with pytest.raises(ValueError):
        la.truncated(5)


def test_random_lookahead_has_embedding_scale(tiny_model):
    table = tiny_model.get_input_embeddings().weight.float()
    la = pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=0)
    assert la.metadata["init"] == "random"
    ratio = la.weight.std() / table.std()
    assert 0.5 < ratio < 2
    assert not torch.equal(la.weight, pass_ref.LookaheadEmbeddings.from_random(tiny_model, 3, seed=1).weight)


def test_mean_embedding_start(tiny_model):
    table = tiny_model.get_input_embeddings().weight.float()
    la = pass_ref.LookaheadEmbeddings.from_mean_embedding(tiny_model, 2)
    assert la.metadata["init"] == "mean_embedding"
    assert torch.allclose(la.weight, table.mean(0).expand(2, -1))
