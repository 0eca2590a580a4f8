"""The shipped look-ahead sets: complete, small, documented, loadable onto the default model, exact."""

import json

import pytest
import torch

import pass_ref
from pass_ref.trained import RECIPES, RESULTS_DIR, SHIPPED_L, load_lookahead, trained_path, training_history

SETS = [(d, L) for d in ("code", "text") for L in SHIPPED_L]
RECIPE_SETS = [(r, d, L) for r in RECIPES for d, L in SETS]


@pytest.mark.parametrize("recipe, domain, L", RECIPE_SETS)
def test_shipped_set_has_metadata_and_is_small(recipe, domain, L):
    path = trained_path(domain, L, recipe)
    # "a few KB to a few hundred KB each" : deep look-ahead (the default recipe) stores
    # (1 + num_layers) x L x d_emb floats, 573 KB at L = 8 in float32.
    assert sum(f.stat().st_size for f in path.iterdir()) < 600_000
    la = pass_ref.LookaheadEmbeddings.from_pretrained(path)
    m = la.metadata
    assert la.num_lookahead == L and m["trained"] and m["corpus"]["domain"] == domain and m["corpus"]["split"] == "train"
    assert m["recipe"]["num_lookahead"] == m.get("truncated_from", L)
    # The first budget was 20 minutes per set. The default recipe adds self-distillation; its L = 8 sets
    # took 25.6 (code) and 30.4 (text) minutes here while other jobs shared the two cores (about 21 alone, README):
    # over budget, reported as such. This bounds the recorded time so that a slower recipe cannot slip in unseen.
    assert 0 < m["train_minutes"] <= 31, "train minutes must be recorded and stay near the budget"
    assert m["heldout_loss"] > 0 and len(m["heldout_greedy"]["acceptance"]) == L and m["heldout_greedy"]["tokens_per_call"] >= 1
    assert m["shipped_from"] and "command" in m
    history = training_history(domain, L, recipe)
    assert len(history["loss"]) == m["recipe"]["steps"]
    if recipe == "paper":  # the paper's objective and parameters: L input vectors, corpus tokens as targets
        assert not la.deep and la.num_parameters == L * la.hidden_size
        assert m["recipe"]["targets"] == "data" and m["recipe"]["data"] == "corpus" and not m["recipe"]["deep"]
    else:
        assert la.deep and m["recipe"]["deep"]


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("domain", ["code", "text"])
def test_truncated_sets_are_prefixes_of_the_L8_set(domain, recipe):
    full = load_lookahead(domain, 8, recipe=recipe)
    for L in SHIPPED_L:
        la = load_lookahead(domain, L, recipe=recipe)
        if la.metadata.get("truncated_from") == 8:
            assert torch.equal(la.weight, full.weight[:L])
            assert la.deep == full.deep
            if la.deep:
                assert torch.equal(la.layer_weight, full.layer_weight[:, :L])


def test_comparison_evidence_is_shipped():
    evidence = json.loads((RESULTS_DIR / "comparison.json").read_text())
    assert {r["source"] for r in evidence["rows"]} == {"separate L=2", "separate L=4", "truncated L=8"}
    assert set(evidence["shipped"]) == set(evidence["shipped_paper"]) == {f"{d}-L{L}" for d, L in SETS}


def test_bad_requests():
    with pytest.raises(ValueError, match="domain"):
        load_lookahead("wikipedia", 4)
    with pytest.raises(FileNotFoundError, match="shipped"):
        load_lookahead("code", 5)
    with pytest.raises(ValueError, match="recipe"):
        load_lookahead("code", 4, recipe="deep")


@pytest.mark.slow
def test_shipped_sets_fit_the_default_model_and_stay_exact(real_model):
    """Loads every set onto SmolLM2 (compatibility check) and greedy PaSS with them equals greedy decoding."""
    model, tokenizer = real_model
    ids = tokenizer("def fibonacci(n):\n    ", return_tensors="pt").input_ids
    ref = pass_ref.autoregressive_generate(model, ids, max_new_tokens=24)
    for recipe, domain, L in RECIPE_SETS:
        la = load_lookahead(domain, L, recipe=recipe, model=model)
        assert torch.equal(pass_ref.pass_generate(model, la, ids, max_new_tokens=24).new_tokens, ref.new_tokens), (recipe, domain, L)


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["code", "text"])
def test_first_drafts_are_the_argmax_of_lookahead_logits(real_model, domain):
    """For every shipped set, greedy PaSS's first drafts are the argmax of lookahead_logits' rows;
    skipping the deep hooks (a plain call with the vectors appended) drafts something else."""
    model, tokenizer = real_model
    ids = tokenizer("def add(a, b):\n    return", return_tensors="pt").input_ids
    hookless_differs = False
    for recipe, L in [(r, L) for r in RECIPES for L in SHIPPED_L]:
        la = load_lookahead(domain, L, recipe=recipe, model=model)
        rows = pass_ref.lookahead_logits(model, la, ids)  # (L + 1, V)
        assert rows.shape[0] == L + 1
        first = pass_ref.pass_generate(model, la, ids, max_new_tokens=L + 2, trace=True).trace[0]
        assert first.exact_token == int(rows[0].argmax()) and first.draft_tokens == rows[1:].argmax(-1).tolist()
        with torch.inference_mode():
            plain = pass_ref.CachedModel(model).forward(ids[0].tolist(), pass_ref.ExtraInputs(la.drafting_inputs(model, L)))[-L:]
        hookless_differs |= plain.argmax(-1).tolist() != first.draft_tokens
    assert hookless_differs  # the negative control: the extended sets' deep vectors matter


# --- sets for other models, found by the model's name --------------------------------------------------------------

QWEN = "qwen2.5-coder-0.5b-instruct"


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_qwen_sets_are_shipped_with_their_recipe_and_steps(recipe):
    la = pass_ref.LookaheadEmbeddings.from_pretrained(trained_path("code", 4, recipe, QWEN))
    m = la.metadata
    assert la.num_lookahead == 4 and la.hidden_size == 896 and la.base_model["model_type"] == "qwen2"
    assert m["trained"] and m["trained_steps"] > 0 and m["heldout_greedy"]["acceptance"]
    assert la.deep == (recipe == "extended")
    if recipe == "paper":  # trained until its held-out loss stopped improving (or the step limit), the best vectors kept
        assert m["recipe"]["eval_every"] > 0 and m["validation"]
        best_step, best_loss = min(m["validation"], key=lambda v: v[1])
        assert m["best_step"] == best_step and best_step % m["recipe"]["eval_every"] == 0
        if m["converged"]:
            assert m["stopped_at"] == m["trained_steps"] <= m["recipe"]["steps"]
            assert m["stopped_at"] - best_step >= m["recipe"]["patience"] * m["recipe"]["eval_every"]
        else:
            assert m["stopped_at"] is None and m["trained_steps"] == m["recipe"]["steps"]
    else:  # a fixed number of steps
        assert m["trained_steps"] == m["recipe"]["steps"] and m["converged"] is False


def test_a_model_is_matched_to_its_own_sets_by_name(tiny_model, monkeypatch):
    from pass_ref.trained import model_key, shipped_models

    assert QWEN in shipped_models() and shipped_models()[0] == "smollm2-135m-instruct"
    smol = "smollm2-135m-instruct"
    for name, key in [("SmolLM2-135M-Instruct.Q4_1", smol), ("HuggingFaceTB/SmolLM2-135M-Instruct", smol),
                      ("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M", QWEN), ("Qwen/Qwen2.5-Coder-0.5B-Instruct", QWEN),
                      ("Qwen/Qwen2.5-Coder-0.5B-Instruct-extra", "qwen2.5-coder-0.5b-instruct-extra")]:
        monkeypatch.setattr(tiny_model.config, "name_or_path", name)
        assert model_key(tiny_model) == key, name
    monkeypatch.setattr(tiny_model.config, "name_or_path", "my-own-llama")
    with pytest.raises(FileNotFoundError, match="no shipped look-ahead embeddings for model 'my-own-llama'.*qwen2.5"):
        load_lookahead("code", 4, model=tiny_model)
    monkeypatch.setattr(tiny_model.config, "name_or_path", "Qwen/Qwen2.5-Coder-0.5B-Instruct")
    with pytest.raises(FileNotFoundError, match="shipped for it: \\['extended/code-L4', 'paper/code-L4'\\]"):
        load_lookahead("text", 4, model=tiny_model)
    with pytest.raises(ValueError):  # the name says Qwen but the shape is a tiny Llama's: refused, never mis-drafted
        load_lookahead("code", 4, model=tiny_model)


@pytest.mark.slow
def test_the_qwen_sets_load_onto_qwen_and_stay_exact():
    from pass_ref.assets import extra_model_path

    try:
        extra_model_path(QWEN)
    except (FileNotFoundError, RuntimeError, ImportError) as error:
        pytest.skip(f"the opt-in Qwen model is not installed (make models-extra): {error}")
    model, tokenizer = pass_ref.load_model(QWEN)
    ids = tokenizer("def fibonacci(n):", return_tensors="pt").input_ids
    plain = pass_ref.autoregressive_generate(model, ids, max_new_tokens=12)
    for recipe in RECIPES:
        la = load_lookahead("code", 4, recipe=recipe, model=model)
        assert la.base_model["name_or_path"] == model.config.name_or_path
        assert torch.equal(pass_ref.pass_generate(model, la, ids, max_new_tokens=12).new_tokens, plain.new_tokens), recipe
