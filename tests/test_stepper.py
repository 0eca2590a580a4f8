"""The course stepper: its recorded iterations are pass_generate's, and every number it shows is the rule's."""

import matplotlib
import pytest
import torch

import pass_ref
from pass_ref import SamplingConfig
from pass_ref.course.stepper import Stepper, record_iterations

matplotlib.use("Agg")


class Digits:
    """A tokenizer stand-in: token t decodes to its number."""

    def decode(self, ids):
        return " ".join(str(int(t)) for t in ids)


@pytest.fixture(scope="module")
def setup():
    model = pass_ref.tiny_llama(vocab_size=12, hidden_size=16, seed=1, dtype=torch.float64, init_std=0.3)
    lookahead = pass_ref.LookaheadEmbeddings.from_random(model, 3, seed=2)
    return model, lookahead


@pytest.mark.parametrize("seed", range(6))
def test_recorded_iterations_are_pass_generate(setup, seed):
    """Same calls, same random draws: the committed tokens equal pass_generate's, for any budget."""
    model, la = setup
    sampling = SamplingConfig(temperature=1.0)
    for budget in (1, 2, 7, 20):
        views = record_iterations(model, la, [1, 2, 3], max_new_tokens=budget, sampling=sampling, seed=seed)
        package = pass_ref.pass_generate(model, la, [1, 2, 3], max_new_tokens=budget, temperature=1.0, seed=seed, trace=True)
        assert sum((v.tokens for v in views), []) == package.new_tokens.tolist()
        checked = [v for v in views if v.next_probs is not None]  # an exact-only last step leaves no trace record
        assert [v.accepted for v in checked] == [r.num_accepted for r in package.trace]
        assert [v.drafts for v in checked] == [r.draft_tokens for r in package.trace]


def test_every_number_shown_is_the_rules(setup):
    """r against min(1, q/p) decides each draft; the next token's distribution is the residual or q_{k+1};
    the cache holds all but the last token; the stepper text and figure cover all three outcomes."""
    model, la = setup
    views = []
    for seed in range(40):
        views += record_iterations(model, la, [4, 5], max_new_tokens=24, sampling=SamplingConfig(temperature=1.0), seed=seed)
    checked = [v for v in views if v.next_probs is not None]
    outcomes = {v.outcome.split(" ")[0] if "residual" in v.outcome else v.outcome for v in checked}
    assert {"all accepted + bonus"} < outcomes and any(0 < v.accepted < v.k for v in checked)
    for v in checked:
        a = v.accepted
        assert bool((v.r[:a] < v.ratio[:a]).all())
        assert torch.allclose(v.ratio, torch.clamp(v.q[torch.arange(v.k), v.drafts] / v.p[torch.arange(v.k), v.drafts], max=1.0))
        if a < v.k:
            assert bool(v.r[a] >= v.ratio[a])
            assert torch.allclose(v.next_probs, pass_ref.residual_distribution(v.q[a], v.p[a]))
        else:
            assert torch.equal(v.next_probs, v.q[v.k])
        assert v.cache_after == v.n + len(v.tokens) - 1 and v.cache_after_drafting == v.n
        assert v.cache_after_validation == v.n + 1 + v.k
    stepper = Stepper(checked, Digits())
    bonus = next(v.index for v in checked if v.accepted == v.k)
    assert "bonus" in stepper.describe(checked.index(next(v for v in checked if v.index == bonus and v.accepted == v.k)))
    assert "REJECT" in stepper.describe(checked.index(next(v for v in checked if v.accepted < v.k)))
    assert stepper.step(10**6) == stepper.describe(len(checked) - 1) and stepper.step(-(10**6)) == stepper.describe(0)
    assert len(stepper.figure(0).axes) >= 2
    with pytest.raises(ValueError, match="nothing to step"):
        Stepper([], Digits())


def test_stepper_widget_builds(setup):
    """The ipywidgets panel builds and its buttons move the position."""
    pytest.importorskip("ipywidgets")
    model, la = setup
    views = record_iterations(model, la, [4, 5], max_new_tokens=12, sampling=SamplingConfig(temperature=1.0), seed=0)
    stepper = Stepper(views, Digits())
    panel = stepper.widget()
    back, forward, slider = panel.children[0].children
    forward.click()
    assert stepper.position == min(1, len(views) - 1) and slider.value == stepper.position + 1
    back.click()
    assert stepper.position == 0
