"""PaSS through ``model.generate(custom_generate=...)``, device maps, and Hub-style look-ahead folders."""

import functools
import shutil
import threading

import pytest
import torch
from transformers import StoppingCriteriaList, StopStringCriteria, TextIteratorStreamer

import pass_ref
from pass_ref import LookaheadEmbeddings, SamplingConfig, decode
from pass_ref.course.exactness import chi_square_test, empirical_counts, exact_sequence_law
from pass_ref.experiments.data import humaneval_prompts
from pass_ref.hf import custom_generate_dir, pass_decoding
from pass_ref.sampling import sample


class RecordingStreamer:
    """Records every put (the first one is the prompt, put by ``generate`` itself)."""

    def __init__(self):
        self.puts, self.ended = [], 0

    def put(self, value):
        self.puts.append(value.reshape(-1).tolist())

    def end(self):
        self.ended += 1


@pytest.fixture(scope="module")
def tiny():
    model = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=0)
    la = LookaheadEmbeddings.from_token(model, 3)
    with torch.no_grad():
        la.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
    return model, la


PROMPT = torch.tensor([[1, 2, 3, 4, 5, 1, 2]])  # (1, T)


@pytest.mark.parametrize("options", [{}, {"fused": True}, {"prompt_lookup": True}, {"num_lookahead": 2}],
                         ids=["two-call", "fused", "hybrid", "L2"])
def test_tiny_greedy_equals_generate(tiny, options):
    model, la = tiny
    ref = model.generate(PROMPT, max_new_tokens=24, do_sample=False)
    out = model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=24, do_sample=False, **options)
    assert out.shape == ref.shape == (1, PROMPT.shape[1] + 24)
    assert torch.equal(out, ref)


def test_tiny_eos_cuts_inside_a_block(tiny):
    """EOS reached in the middle of an accepted block ends generation right there, as generate does."""
    model, la = tiny
    free = model.generate(PROMPT, max_new_tokens=24, do_sample=False)[0, PROMPT.shape[1]:].tolist()
    eos = free[5]  # a token that does appear
    ref = model.generate(PROMPT, max_new_tokens=24, do_sample=False, eos_token_id=eos)
    out = model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=24, do_sample=False, eos_token_id=eos)
    assert torch.equal(out, ref) and out[0, -1].item() == eos and out.shape[1] < PROMPT.shape[1] + 24


def test_folder_route_equals_callable(tiny):
    model, la = tiny
    a = model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=16)
    b = model.generate(PROMPT, custom_generate=str(custom_generate_dir()), trust_remote_code=True, lookahead=la, max_new_tokens=16)
    assert torch.equal(a, b)
    card = (custom_generate_dir() / "README.md").read_text()
    assert card.startswith("---\n") and "custom_generate" in card.split("---")[1]


@pytest.mark.parametrize("route", ["callable", "folder"])
def test_streamer_receives_the_new_tokens_in_order(tiny, route):
    model, la = tiny
    streamer = RecordingStreamer()
    custom = pass_decoding if route == "callable" else str(custom_generate_dir())
    out = model.generate(PROMPT, custom_generate=custom, trust_remote_code=True, lookahead=la, max_new_tokens=20, streamer=streamer)
    assert streamer.puts[0] == PROMPT[0].tolist()
    streamed = [t for put in streamer.puts[1:] for t in put]
    assert streamed == out[0, PROMPT.shape[1]:].tolist()
    assert streamer.ended == 1
    assert len(streamer.puts) > 2  # streamed as accepted, not in one piece at the end


@pytest.mark.parametrize("sampling", [dict(temperature=0.9, top_p=0.8), dict(temperature=0.6, top_k=5), dict(top_k=8)],
                         ids=["T0.9-topp0.8", "T0.6-topk5", "T1-topk8"])
def test_sampling_options_map_to_pass_generate(tiny, sampling):
    """generate's temperature / top-k / top-p reach the loop as pass_generate's: same seed, same sample."""
    model, la = tiny
    for seed in range(3):
        routed = model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=16, do_sample=True,
                                generator=torch.Generator().manual_seed(seed), **sampling)
        direct = pass_ref.pass_generate(model, la, PROMPT, max_new_tokens=16, seed=seed, temperature=sampling.get("temperature", 1.0),
                                        top_k=sampling.get("top_k", 50), top_p=sampling.get("top_p"))
        assert routed[0, PROMPT.shape[1]:].tolist() == direct.new_tokens.tolist()


def test_return_dict_in_generate(tiny):
    model, la = tiny
    out = model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=8, return_dict_in_generate=True)
    ref = model.generate(PROMPT, max_new_tokens=8, return_dict_in_generate=True)
    assert torch.equal(out.sequences, ref.sequences)


REFUSED = {
    "repetition_penalty": dict(repetition_penalty=1.3),
    "no_repeat_ngram_size": dict(no_repeat_ngram_size=2),
    "min_new_tokens": dict(min_new_tokens=3, eos_token_id=3),
    "min_p": dict(do_sample=True, min_p=0.1),
    "typical_p": dict(do_sample=True, typical_p=0.5),
    "num_beams": dict(num_beams=2),
    "num_return_sequences": dict(do_sample=True, num_return_sequences=2),
    "output_scores": dict(output_scores=True, return_dict_in_generate=True),
    "output_logits": dict(output_logits=True, return_dict_in_generate=True),
    "bad_words_ids": dict(bad_words_ids=[[4]]),
    "suppress_tokens": dict(suppress_tokens=[4]),
    "sequence_bias": dict(sequence_bias={(4,): -1.0}),
    "logits_processor": dict(logits_processor=[lambda ids, scores: scores]),
    "prompt_lookup_num_tokens": dict(prompt_lookup_num_tokens=3),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_options_raise_with_their_name(tiny, name):
    model, la = tiny
    with pytest.raises(ValueError, match=name):
        model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=6, **REFUSED[name])


def test_refused_batch_padding_assistant_and_missing_lookahead(tiny):
    model, la = tiny
    with pytest.raises(ValueError, match="batch size 2"):
        model.generate(PROMPT.repeat(2, 1), custom_generate=pass_decoding, lookahead=la, max_new_tokens=4)
    with pytest.raises(ValueError, match="attention_mask"):
        mask = torch.ones_like(PROMPT)
        mask[0, 0] = 0
        model.generate(PROMPT, attention_mask=mask, custom_generate=pass_decoding, lookahead=la, max_new_tokens=4)
    with pytest.raises(ValueError, match="assistant_model"):
        model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=4, assistant_model=model)
    with pytest.raises(ValueError, match="lookahead"):
        model.generate(PROMPT, custom_generate=pass_decoding, max_new_tokens=4)
    streamer = RecordingStreamer()  # a refusal still ends the streamer generate has started
    with pytest.raises(ValueError, match="repetition_penalty"):
        model.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=4, repetition_penalty=1.2, streamer=streamer)
    assert streamer.puts == [PROMPT[0].tolist()] and streamer.ended == 1


# --- sampling: the enumerated-law test through generate, with its negative control -------------

V, M, N = 4, 3, 2000  # vocabulary (the `small` fixture of conftest.py), tokens checked, samples


def _generate_route_counts(model, la, n=N):
    prompt = torch.tensor([[1, 2]])
    samples = []
    for seed in range(n):
        out = model.generate(prompt, custom_generate=pass_decoding, lookahead=la, max_new_tokens=M, do_sample=True,
                             temperature=0.7, top_k=3, generator=torch.Generator().manual_seed(seed))
        samples.append(out[0, 2:].tolist())
    law = exact_sequence_law(model, [1, 2], M, SamplingConfig(0.7, top_k=3)).numpy()
    return chi_square_test(empirical_counts(samples, V, M), law)


def test_generate_route_samples_the_exact_law(small):
    result = _generate_route_counts(*small)
    assert result.pvalue > 1e-3, result


def test_generate_route_negative_control(small, monkeypatch):
    """The same test through generate catches a loop whose verifier accepts every draft."""

    def accept_every_draft(q, p, drafts, generator):
        return drafts.shape[0], sample(q[-1], generator)

    monkeypatch.setattr(pass_ref.hf, "decode", functools.partial(decode, verify_fn=accept_every_draft))
    result = _generate_route_counts(*small, n=N // 2)  # fewer samples than the positive test, still caught
    assert result.pvalue < 1e-6, result


# --- models spread over devices ---------------------------------------------------------------------

def _save_tiny_with_tokenizer(model, path):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    model.save_pretrained(path)
    vocab = {f"t{i}": i for i in range(model.config.vocab_size)}
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), unk_token="t0").save_pretrained(path)


def test_device_map_dispatched_model_gives_the_same_tokens(tiny, tmp_path):
    """A multi-entry device_map (one layer offloaded to disk: accelerate's hooks run it) decodes the same tokens."""
    model, la = tiny
    _save_tiny_with_tokenizer(model, tmp_path / "tiny")
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
                  "model.norm": "cpu", "lm_head": "cpu"}
    spread, _ = pass_ref.load_model(tmp_path / "tiny", dtype=torch.float64, device_map=device_map, offload_folder=tmp_path / "offload")
    assert hasattr(spread.model.layers[1], "_hf_hook") and spread.model.layers[1].mlp.up_proj.weight.device.type == "meta"
    deep = LookaheadEmbeddings(la.weight.detach(), base_model=la.base_model, base_probe=la.base_probe).make_deep(model)
    with torch.no_grad():
        deep.layer_weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    for lookahead, options in ((la, {}), (la, {"fused": True}), (deep, {}), (deep, {"fused": True, "prompt_lookup": True})):
        ref = pass_ref.pass_generate(model, lookahead, PROMPT, max_new_tokens=20, **options).new_tokens
        got = pass_ref.pass_generate(spread, lookahead, PROMPT, max_new_tokens=20, **options).new_tokens
        assert torch.equal(ref, got), options
    routed = spread.generate(PROMPT, custom_generate=pass_decoding, lookahead=la, max_new_tokens=20)
    assert torch.equal(routed, model.generate(PROMPT, max_new_tokens=20))


def test_load_model_device_map_arguments():
    with pytest.raises(ValueError, match="not both"):
        pass_ref.load_model("unused", device="cuda", device_map="auto")
    with pytest.raises(ValueError, match="offload_folder"):
        pass_ref.load_model("unused", offload_folder="x")


@pytest.mark.skipif(torch.cuda.device_count() < 1, reason="needs a CUDA device")
def test_device_map_auto_on_gpu(tiny, tmp_path):
    model, la = tiny
    _save_tiny_with_tokenizer(model, tmp_path / "tiny")
    spread, _ = pass_ref.load_model(tmp_path / "tiny", dtype=torch.float64, device_map="auto")
    ref = pass_ref.pass_generate(model, la, PROMPT, max_new_tokens=20).new_tokens
    assert torch.equal(pass_ref.pass_generate(spread, la, PROMPT, max_new_tokens=20).new_tokens.cpu(), ref)


# --- look-ahead sets as Hub-style folders -----------------------------------------------------------

def test_save_pretrained_writes_a_model_card(tiny, tmp_path):
    model, la = tiny
    la.save_pretrained(tmp_path / "la")
    card = (tmp_path / "la" / "README.md").read_text()
    assert "base_model:" in card and "| L (look-ahead tokens) | 3 |" in card and f"| parameters | {la.num_parameters:,} |" in card
    assert "from_pretrained" in card
    la.metadata.update(recipe={"steps": 300, "batch_size": 8, "lr": 0.01, "init": "mean", "prompts": "functions"},
                       first_stage={"trained_steps": 200, "first_stage": {"trained_steps": 100}})
    assert "| training | 100 + 200 + 300 steps (3 stages, each from the previous one's vectors); the last on prompts " in la.model_card()
    assert la.stage_steps() == [100, 200, 300]
    la.metadata.pop("first_stage")
    assert la.stage_steps() == [300] and "| training | 300 steps; self-distilled on prompts ending after" in la.model_card()
    la.metadata.pop("recipe")
    assert la.stage_steps() == []


def test_shipped_sets_carry_their_model_card():
    for recipe in ("paper", "extended"):
        la = pass_ref.load_lookahead("code", 4, recipe=recipe)
        card = (pass_ref.trained.trained_path("code", 4, recipe) / "README.md").read_text()
        assert card == la.model_card()
        assert f"| recipe | {recipe}" in card and f"| parameters | {la.num_parameters:,} |" in card


def test_from_pretrained_hub_id_from_the_local_cache(tiny, tmp_path):
    """A Hub id resolves offline from the local cache (the layout huggingface_hub writes)."""
    model, la = tiny
    repo = tmp_path / "hub" / "models--someone--pass-lookahead"
    la.save_pretrained(repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    loaded = LookaheadEmbeddings.from_pretrained("someone/pass-lookahead", model=model, cache_dir=tmp_path / "hub", local_files_only=True)
    assert torch.equal(loaded.weight, la.weight)
    with pytest.raises(FileNotFoundError, match="local Hub cache"):
        LookaheadEmbeddings.from_pretrained("someone/absent", cache_dir=tmp_path / "hub", local_files_only=True)
    other = pass_ref.tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=1)
    with pytest.raises(ValueError, match="differ"):
        LookaheadEmbeddings.from_pretrained("someone/pass-lookahead", model=other, cache_dir=tmp_path / "hub", local_files_only=True)
    shutil.rmtree(tmp_path / "hub")


# --- the real model (float32): generate(custom_generate=...) equals generate() ------------------------

@pytest.mark.slow
def test_real_model_greedy_equals_generate(real_model):
    model, tokenizer = real_model
    la = pass_ref.load_lookahead("code", 4, model=model)
    EOS, STOP = "eos", "stop"  # replaced by a token / a string of the prompt's free greedy completion, so they really cut
    cases = [  # (options of generate, PaSS-only options, route)
        (dict(), dict(), pass_decoding),
        (dict(eos_token_id=EOS), dict(), pass_decoding),
        (dict(eos_token_id=EOS), dict(fused=True, prompt_lookup=True), pass_decoding),
        (dict(stop_strings=STOP, tokenizer=tokenizer), dict(), "folder"),
        (dict(stop_strings=STOP, tokenizer=tokenizer), dict(fused=True), "folder"),
        (dict(), dict(fused=True), pass_decoding),
    ]
    stopped_early = 0
    for prompt, (options, pass_options, route) in zip(humaneval_prompts(len(cases)), cases):
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        free = model.generate(ids, max_new_tokens=30, do_sample=False)[0, ids.shape[1]:].tolist()
        if options.get("eos_token_id") == EOS:
            options = {**options, "eos_token_id": free[8]}
        if options.get("stop_strings") == STOP:  # the first visible two-token piece after the 10th token
            text = next(t for k in range(10, 28) if len(t := tokenizer.decode(free[k:k + 2]).strip()) >= 3)
            options = {**options, "stop_strings": [text]}
        ref = model.generate(ids, max_new_tokens=40, do_sample=False, **options)
        if route == "folder":
            out = model.generate(ids, custom_generate=str(custom_generate_dir()), trust_remote_code=True, lookahead=la,
                                 max_new_tokens=40, do_sample=False, **options, **pass_options)
        else:
            out = model.generate(ids, custom_generate=route, lookahead=la, max_new_tokens=40, do_sample=False, **options, **pass_options)
        assert torch.equal(out, ref), (options, pass_options, route)
        stopped_early += out.shape[1] < ids.shape[1] + 40
        if "stop_strings" in options:  # with the callable: the criterion built by hand
            stop = StoppingCriteriaList([StopStringCriteria(tokenizer, options["stop_strings"])])
            by_hand = model.generate(
                ids, custom_generate=pass_decoding, lookahead=la, max_new_tokens=40, do_sample=False, stopping_criteria=stop
            )
            assert torch.equal(by_hand, ref)
    assert stopped_early >= 4  # EOS and the stop strings really cut generations


@pytest.mark.slow
def test_real_model_text_iterator_streamer(real_model):
    model, tokenizer = real_model
    la = pass_ref.load_lookahead("code", 4, model=model)
    ids = tokenizer(humaneval_prompts(1)[0], return_tensors="pt").input_ids
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            out=model.generate(ids, custom_generate=pass_decoding, lookahead=la, max_new_tokens=32, streamer=streamer, do_sample=False)
        )
    )
    thread.start()
    text = "".join(streamer)
    thread.join(timeout=60)
    assert text == tokenizer.decode(result["out"][0, ids.shape[1] :])
