"""The method table: a drafting method defined and registered here, in the test file, runs through the
loop, the transformers route, the benchmark, the doctor and the exactness tests without editing pass_ref."""

import pytest
import torch
from conftest import PROMPTS
from test_decoding import greedy_check
from test_distribution import CONFIGS, accept_every_draft, law_check

import pass_ref
from pass_ref import METHODS, Draft, Drafter, make_drafter, register
from pass_ref.checks import vocab_size
from pass_ref.experiments.bench import BenchRunner, plan_runs, run_benchmark, summarize
from pass_ref.experiments.doctor import method_table, record_calls
from pass_ref.sampling import sample


class UniformDrafter(Drafter):
    """A toy method: K drafts drawn uniformly from the vocabulary (rarely accepted, but exact)."""

    def __init__(self, K: int) -> None:
        self.max_drafts = self.positions_ahead = K

    def propose(self, state) -> Draft:
        k = min(self.max_drafts, state.room)
        if k == 0:
            return state.no_draft()
        V = vocab_size(state.target.model)
        probs = torch.full((k, V), 1.0 / V, dtype=torch.float64, device=state.target.device)  # (k, V)
        return Draft(tokens=sample(probs, state.generator), probs=probs)


@pytest.fixture
def toy():
    """Register the toy method for one test (the table is the only list of methods)."""
    register("toy-uniform", "uniform drafts (toy)", options=("num_draft_tokens",), defaults={"num_draft_tokens": 2},
             size="num_draft_tokens")(lambda model, lookahead, num_draft_tokens: UniformDrafter(num_draft_tokens))
    yield "toy-uniform"
    METHODS.pop("toy-uniform")


def test_toy_method_is_exact_greedy(tiny_model, toy):
    """The greedy-equality check every method gets: the toy's tokens equal autoregressive decoding's."""
    assert greedy_check(tiny_model, toy) > 0


def test_toy_method_samples_the_exact_law(small, toy):
    """The distribution test every method gets, and its negative control, on the toy method."""
    model, la = small
    result, accepted = law_check(model, la, toy, CONFIGS["T1"])
    assert 0.05 < accepted < 0.95 and result.pvalue > 1e-3, result
    wrong, _ = law_check(model, la, toy, CONFIGS["T1"], samples=500, verify_fn=accept_every_draft)
    assert wrong.pvalue < 1e-6, wrong


def test_toy_method_in_the_benchmark_and_the_doctor(tiny_model, toy):
    """The benchmark plans, runs and summarises the toy; the doctor lists it; options reach its drafter."""
    specs = plan_runs(["ar", toy], [0.0], [4], options={toy: {"num_draft_tokens": 3}})
    assert [(s.method, s.L) for s in specs] == [("ar", None), (toy, 3)]
    runner = BenchRunner(tiny_model, max_new_tokens=12, options={toy: {"num_draft_tokens": 3}})
    assert runner.drafter(specs[1]).max_drafts == 3
    records, completed = run_benchmark(runner, PROMPTS[:2], specs, progress=False)
    row = {r["method"]: r for r in summarize(records)}[toy]
    assert completed and row["label"] == "uniform drafts (toy)" and row["same_as_ar"] == 1.0
    runs = record_calls(method_table(tiny_model, pass_ref.LookaheadEmbeddings.from_token(tiny_model, 2), 2), [torch.tensor([[1, 2]])], 6)
    assert "uniform drafts (toy)" in {r.name for r in runs}


def test_toy_method_through_model_generate(tiny_model, toy):
    """The transformers route runs any method of the table by name."""
    ids = torch.tensor([PROMPTS[1]])
    expected = pass_ref.autoregressive_generate(tiny_model, ids, max_new_tokens=10).new_tokens.tolist()
    out = tiny_model.generate(ids, attention_mask=torch.ones_like(ids), custom_generate=pass_ref.hf.pass_decoding, method=toy,
                              method_options={"num_draft_tokens": 3}, max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert out[0, ids.shape[1] :].tolist() == expected


def test_every_method_builds_and_has_a_label(tiny_model):
    """Each entry builds a Drafter from its defaults (given what it requires) and says how tables name it."""
    la = pass_ref.LookaheadEmbeddings.from_token(tiny_model, 3)
    for name, method in METHODS.items():
        options = {"draft_model": pass_ref.truncated_draft_model(tiny_model, 1)} if "draft_model" in method.required else {}
        drafter = make_drafter(name, tiny_model, la if method.needs_lookahead else None, **options)
        assert isinstance(drafter, Drafter) and method.label and drafter.positions_ahead >= drafter.max_drafts


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m, la: make_drafter("nope", m), ValueError, "unknown method 'nope'"),
        (lambda m, la: make_drafter("pass", m, la, groups=[0]), TypeError, "takes no option"),
        (lambda m, la: make_drafter("speculative", m), ValueError, "needs \\['draft_model'\\]"),
        (lambda m, la: make_drafter("pass", m), TypeError, "LookaheadEmbeddings"),
        (lambda m, la: make_drafter("lookup", m, la), ValueError, "without look-ahead"),
        (lambda m, la: make_drafter("pass", m, la, num_lookahead=5), ValueError, "only 3"),
        (lambda m, la: make_drafter("hybrid", m, la, fused=False, groups=[0]), ValueError, "only apply to fused"),
        (lambda m, la: register("pass", "again")(lambda model, lookahead: None), ValueError, "already registered"),
    ],
)
def test_bad_requests_to_the_table(tiny_model, call, error, match):
    """The table refuses what it cannot build, by name."""
    with pytest.raises(error, match=match):
        call(tiny_model, pass_ref.LookaheadEmbeddings.from_token(tiny_model, 3))
