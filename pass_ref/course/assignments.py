"""Autograders for the classroom assignments (notebook ``07_assignments``).

Fifteen assignments, ten of them on PaSS itself (``ASSIGNMENTS`` lists them with a difficulty).

Each ``grade_*`` function takes the student's function, checks it against ``pass_ref``
on seeded random cases, prints one clear line (PASS / FAIL / NOT IMPLEMENTED) and
returns a ``Grade``. It never raises: a crashing or unfinished answer is reported (a crash
names the case), the kernel keeps running. Answers may be tensors, lists or NumPy arrays,
in float32 or float64. In a notebook the lines are feedback; the grading CLI does not read
them: it calls the graders itself on hidden cases (``pass_ref.course.referee``).

    from pass_ref.course.assignments import grade_residual
    grade_residual(my_residual)      # prints e.g. "PASS  residual distribution: 60 random cases"
"""

from __future__ import annotations

import contextlib
import math
import traceback
from dataclasses import dataclass
from typing import Callable

import torch

from ..verify import acceptance_probs, residual_distribution
from . import theory

PASS, FAIL, NOT_IMPLEMENTED = "PASS", "FAIL", "NOT IMPLEMENTED"


@dataclass
class Grade:
    """The outcome of one autograder run."""

    assignment: str
    status: str  # PASS, FAIL or NOT IMPLEMENTED
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        return f"{self.status:<16}{self.assignment}: {self.message}"


_CASE: list[str] = [""]  # the case the grader is checking now (crash messages name it)
_HIDDEN: list[int] = [0]  # added to every grader's seed: 0 in the notebook, another value when ``grade`` runs


def _case(text: str) -> None:
    _CASE[0] = text


def _seed(base: int) -> torch.Generator:
    """The generator of a grader's cases: the notebook shows seed ``base``; the grading CLI draws hidden ones."""
    return torch.Generator().manual_seed(base + _HIDDEN[0])


@contextlib.contextmanager
def hidden_cases(offset: int):
    """Every grader inside draws its random cases from other seeds (``offset`` != 0): cases no notebook shows."""
    before, _HIDDEN[0] = _HIDDEN[0], int(offset)
    try:
        yield
    finally:
        _HIDDEN[0] = before


def _run(assignment: str, check: Callable[[], str], verbose: bool) -> Grade:
    _case("")
    try:
        grade = Grade(assignment, PASS, check())
    except NotImplementedError:
        grade = Grade(assignment, NOT_IMPLEMENTED, "the stub still raises NotImplementedError; write your solution in it")
    except AssertionError as error:
        grade = Grade(assignment, FAIL, str(error) or "a check failed")
    except Exception as error:  # a student's crash is a result, not a kernel failure
        where = traceback.extract_tb(error.__traceback__)[-1]
        case = f" in case {_CASE[0]}" if _CASE[0] else ""
        grade = Grade(assignment, FAIL, f"your function raised {type(error).__name__}{case}: {error} (line {where.lineno})")
    if verbose:
        print(grade)
    return grade


def _random_pair(V: int, generator: torch.Generator, sharpness: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    q = torch.rand(V, generator=generator, dtype=torch.float64) ** sharpness
    p = torch.rand(V, generator=generator, dtype=torch.float64) ** sharpness
    return q / q.sum(), p / p.sum()


def _as_tensor(value, what: str) -> torch.Tensor:
    """A tensor, list, tuple or NumPy array answer as a tensor (the meaning is the same)."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        import numpy as np

        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must be a tensor, a list or an array of numbers, got {type(value).__name__}") from None


def _random_grid(generator: torch.Generator, n: int = 6) -> list[tuple[float, int]]:
    """``n`` random (alpha, L) pairs: alpha in (0, 1) rounded to 3 places, L in 1..8."""
    return [(round(float(torch.rand(1, generator=generator)), 3), int(torch.randint(1, 9, (1,), generator=generator))) for _ in range(n)]


def _max_error(got: torch.Tensor, want: torch.Tensor, what: str) -> tuple[float, float]:
    """(max |got - want|, the tolerance for got's precision): 1e-9 in float64, 1e-5 in float32."""
    if got.dtype not in (torch.float64, torch.float32):
        raise AssertionError(f"{what}: compute in float32 or float64, got {got.dtype}")
    return (got.double() - want.double()).abs().max().item(), 1e-9 if got.dtype == torch.float64 else 1e-5


# ----------------------------------------------------------------------------------------
# 1. The residual distribution
# ----------------------------------------------------------------------------------------

def grade_residual(residual: Callable, *, verbose: bool = True) -> Grade:
    """``residual(q, p) -> (V,)`` must equal norm(max(0, q - p)) (q itself when q == p)."""

    def check() -> str:
        g = _seed(1)
        cases = [_random_pair(V, g) for V in (2, 5, 50) for _ in range(20)]
        q, _ = _random_pair(7, g)
        cases.append((q, q.clone()))  # nothing to refill: the rule says return q
        for k, (q, p) in enumerate(cases):
            _case(f"{k} (V={q.numel()}, q == p: {torch.equal(q, p)})")
            got = _as_tensor(residual(q.clone(), p.clone()), "residual(q, p)")
            want = residual_distribution(q, p)
            assert got.shape == want.shape, f"case {k}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            assert torch.isfinite(got).all(), f"case {k}: the result has NaN or inf (q == p: {torch.equal(q, p)})"
            err, tol = _max_error(got, want, f"case {k}")
            assert err < tol, f"case {k} (V={q.numel()}): max |yours - expected| = {err:.2e} (tolerance {tol:.0e} in {got.dtype})"
        return f"{len(cases)} random cases, including q == p"

    return _run("residual distribution", check, verbose)


# ----------------------------------------------------------------------------------------
# 2. The accept loop for one block
# ----------------------------------------------------------------------------------------

def _reference_block(q, p, drafts, r):
    K = drafts.shape[0]
    n = int((r < acceptance_probs(q, p, drafts)).long().cumprod(0).sum())
    return n, (residual_distribution(q[n], p[n]) if n < K else q[K])


def grade_accept_block(accept_block: Callable, *, verbose: bool = True) -> Grade:
    """``accept_block(q (K+1, V), p (K, V), drafts (K,), r (K,)) -> (n, next_probs (V,))``."""

    def check() -> str:
        g = _seed(2)
        outcomes = set()
        cases = 0
        for K in (1, 3, 6):
            for _ in range(25):
                V = 8
                q = torch.stack([_random_pair(V, g, 2.0)[0] for _ in range(K + 1)])  # (K+1, V)
                p = torch.stack([_random_pair(V, g, 2.0)[1] for _ in range(K)])  # (K, V)
                drafts = torch.multinomial(p, 1, generator=g)[:, 0]  # (K,)
                r = torch.rand(K, generator=g, dtype=torch.float64)
                _case(f"{cases} (K={K}, r={r.numpy().round(3).tolist()})")
                n, next_probs = accept_block(q.clone(), p.clone(), drafts.clone(), r.clone())
                want_n, want_next = _reference_block(q, p, drafts, r)
                assert int(n) == want_n, f"K={K}: you accepted {int(n)} drafts, the rule accepts {want_n} (r={r.numpy().round(3)})"
                next_probs = _as_tensor(next_probs, "next_probs")
                assert next_probs.shape == want_next.shape, f"K={K}: next_probs has shape {tuple(next_probs.shape)}, expected ({V},)"
                err, tol = _max_error(next_probs, want_next, f"K={K}")
                what = "the bonus distribution q_{K+1}" if want_n == K else f"the residual at position {want_n + 1}"
                assert err < tol, f"K={K}, n={want_n}: next_probs should be {what} (max error {err:.2e})"
                outcomes.add(want_n == K)
                cases += 1
        assert outcomes == {True, False}, "internal: the cases should cover full and partial acceptance"
        return f"{cases} random blocks (K = 1, 3, 6), partial and full acceptance"

    return _run("accept loop for one block", check, verbose)


# ----------------------------------------------------------------------------------------
# 3. Expected tokens per call, and 4. its check by simulation
# ----------------------------------------------------------------------------------------

def grade_tokens_per_call(tokens_per_call: Callable, *, verbose: bool = True) -> Grade:
    """``tokens_per_call(alpha, L) -> float``: PaSS's expected tokens per model call."""

    def check() -> str:
        grid = [(a, L) for a in (0.0, 0.1, 0.35, 0.5, 0.8, 0.99, 1.0) for L in (1, 2, 4, 8)] + _random_grid(_seed(30))
        for a, L in grid:
            _case(f"alpha={a}, L={L}")
            got = float(tokens_per_call(a, L))
            want = theory.pass_tokens_per_call(a, L)
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (
                f"alpha={a}, L={L}: you give {got:.6f}, expected {want:.6f}"
            )
        return f"{len(grid)} (alpha, L) pairs, including alpha = 0 and 1 and random ones"

    return _run("expected tokens per call", check, verbose)


def grade_simulation(simulate: Callable, *, verbose: bool = True) -> Grade:
    """``simulate(alpha, L, iterations, generator) -> float``: Monte-Carlo tokens per call.

    Besides the mean, the estimates must scatter over seeds as a simulation does: the
    closed form (no scatter) or a simulation that ignores the generator is not one.
    """

    def check() -> str:
        for a, L in ((0.0, 4), (0.5, 2), (0.8, 4), (1.0, 3)):
            _case(f"alpha={a}, L={L}, 50000 iterations")
            got = float(simulate(a, L, 50_000, _seed(3)))
            want = theory.pass_tokens_per_call(a, L)
            assert abs(got - want) < 0.02, f"alpha={a}, L={L}: simulated {got:.3f}, the expectation is {want:.3f}"
        _case("alpha=0.6, L=4, 1000 iterations, the same seed twice")
        same = float(simulate(0.6, 4, 1000, _seed(4))) == float(simulate(0.6, 4, 1000, _seed(4)))
        assert same, "use the generator you are given: same seed, same estimate"
        # Scatter: tokens per call = (2 + n) / 2 per iteration, n the accepted drafts; its standard error over
        # I iterations is sd(n) / (2 sqrt(I)). 40 seeds estimate it within about +-25 %.
        alpha, L, iterations = 0.6, 4, 400
        law = [alpha**k * (1 - alpha) for k in range(L)] + [alpha**L]  # P(a = k)
        mean = sum(k * w for k, w in enumerate(law))
        sd_n = math.sqrt(sum((k - mean) ** 2 * w for k, w in enumerate(law)))
        _case(f"alpha={alpha}, L={L}, {iterations} iterations, 40 seeds")
        estimates = torch.tensor([float(simulate(alpha, L, iterations, _seed(100 + k))) for k in range(40)], dtype=torch.float64)
        expected_sd = sd_n / (2 * math.sqrt(iterations))
        ratio = estimates.std().item() / expected_sd
        assert 0.5 < ratio < 1.6, (
            f"over 40 seeds your estimates (alpha={alpha}, L={L}, {iterations} iterations) scatter with sd "
            f"{estimates.std().item():.4f}; a simulation scatters with about {expected_sd:.4f}: simulate, do not compute"
        )
        return "within 0.02 of the expectation at 4 settings, reproducible with a seed, scattering like a simulation"

    return _run("simulation of tokens per call", check, verbose)


# ----------------------------------------------------------------------------------------
# 5. Predict the speed-up from a measured latency curve
# ----------------------------------------------------------------------------------------


def grade_speedup_prediction(predict: Callable, *, verbose: bool = True) -> Grade:
    """``predict(latency: dict n -> seconds, acceptance: list of alpha_i) -> speed-up over autoregressive``."""

    def check() -> str:
        g = _seed(5)
        for case in range(30):
            L = int(torch.randint(1, 9, (1,), generator=g))
            base = 0.01 + 0.05 * float(torch.rand(1, generator=g))
            slope = 0.08 * float(torch.rand(1, generator=g))
            latency = {n: base * (1 + slope * (n - 1)) for n in range(1, 33)}
            a = torch.rand(L, generator=g).sort(descending=True).values.cumprod(0).tolist()  # alpha_1 >= alpha_2 >= ...
            want = theory.tokens_per_iteration_from_acceptance(a) * latency[1] / (2 * latency[L + 1])
            _case(f"{case} (L={L})")
            got = float(predict(dict(latency), list(a)))
            assert math.isclose(got, want, rel_tol=1e-6), f"case {case} (L={L}): you predict {got:.4f}x, expected {want:.4f}x"
        return "30 random latency curves and acceptance profiles"

    return _run("speed-up from a latency curve", check, verbose)


# ----------------------------------------------------------------------------------------
# 6. Break exactness on purpose, and catch it with the distribution test
# ----------------------------------------------------------------------------------------


def grade_broken_verifier(broken_verify: Callable, *, samples: int = 2000, verbose: bool = True) -> Grade:
    """``broken_verify(q, p, drafts, generator) -> (n, next_token)`` must be *caught* by the chi-square test.

    PaSS with the student's verifier samples the first 3 tokens of a tiny 4-token model
    ``samples`` times (seeded); the chi-square test against the enumerated exact law
    must reject it (p < 1e-6). A verifier that is still exact is not a broken one.
    """
    from ..config import DecodingConfig
    from ..drafters.lookahead import LookaheadDrafter
    from ..lookahead import LookaheadEmbeddings
    from ..loop import decode
    from ..models import tiny_llama
    from ..sampling import SamplingConfig
    from .exactness import chi_square_test, empirical_counts, exact_sequence_law, sample_sequences

    def check() -> str:
        # Plausible: a draft the target gives probability 0 is rejected, and the next token is one the target can
        # produce (accepting every draft, notebook 03's negative control, is not a plausible bug).
        q = torch.tensor([[0.0, 0.5, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)  # (K+1, V)
        p = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)  # (K, V)
        drafts = torch.tensor([0, 3])  # q(draft 1) = 0
        for k in range(20):
            _case(f"a first draft with q = 0, seed {k}")
            n, token = broken_verify(q.clone(), p.clone(), drafts.clone(), _seed(200 + k))
            assert int(n) == 0, (f"your verifier accepted {int(n)} draft(s) starting with one the target gives probability 0: "
                                 "that is not a plausible bug (no verifier would); break the rule more subtly")
            assert q[0, int(token)] > 0, f"your verifier returned token {int(token)}, which the target never produces there"
        _case("the chi-square test over PaSS samples")
        V, m, prompt = 4, 3, [1, 2]
        tiny = tiny_llama(vocab_size=V, hidden_size=16, seed=3, init_std=0.15)
        la = LookaheadEmbeddings.from_mean_embedding(tiny, 3)  # overwritten below; a tiny model has no UNK
        with torch.no_grad():
            la.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
        sampling = SamplingConfig(temperature=1.0)
        law = exact_sequence_law(tiny, prompt, m, sampling)

        def one(seed: int) -> torch.Tensor:
            config = DecodingConfig(m + 1, sampling, generator=torch.Generator().manual_seed(seed + _HIDDEN[0]))
            out = decode(tiny, LookaheadDrafter(tiny, la), prompt, config, verify_fn=broken_verify)
            return out.new_tokens[:m]

        counts = empirical_counts(sample_sequences(one, samples), V, m)
        result = chi_square_test(counts, law.numpy())
        assert result.pvalue < 1e-6, (
            f"the distribution test did not catch your verifier (p = {result.pvalue:.3g} >= 1e-6): "
            "it still samples (nearly) exactly from the model. Break the rule more clearly."
        )
        return f"caught: chi-square p = {result.pvalue:.1e} over {samples} samples (an exact verifier gives p > 1e-3)"

    return _run("break exactness and catch it", check, verbose)


# ----------------------------------------------------------------------------------------
# 7. The drafting call by hand (PaSS)
# ----------------------------------------------------------------------------------------


def _tiny_setup(seed: int = 0):
    from ..lookahead import LookaheadEmbeddings
    from ..models import tiny_llama

    tiny = tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=seed)
    la = LookaheadEmbeddings.from_random(tiny, 3, seed=seed)
    return tiny, la


def grade_drafting_call(drafting_call: Callable, *, verbose: bool = True) -> Grade:
    """``drafting_call(model, cache, vectors (L, D), pending (list of ids)) -> (L + 1, V) logits``, leaving in
    ``cache`` the KV of the pending tokens only (Algorithm 1, step 1)."""
    from transformers import DynamicCache

    from ..drafters.lookahead import lookahead_logits

    def check() -> str:
        tiny, la = _tiny_setup()
        cases = 0
        g = _seed(7)
        hidden = [(torch.randint(0, 32, (int(n),), generator=g).tolist(), int(c)) for n, c in ((7, 4), (4, 1))]
        for prompt, cached in [([3, 1, 4, 1, 5], 3), ([9, 2, 6], 0), ([7] * 6, 5)] + hidden:
            _case(f"prompt {prompt}, {cached} cached")
            cache = DynamicCache(config=tiny.config)
            with torch.inference_mode():
                if cached:
                    tiny(input_ids=torch.tensor([prompt[:cached]]), cache=cache, use_cache=True)
                got = _as_tensor(drafting_call(tiny, cache, la.drafting_inputs(tiny, 3), prompt[cached:]), "the logits")
            want = lookahead_logits(tiny, la, prompt)
            assert got.shape == want.shape, f"prompt {prompt} ({cached} cached): shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            err = (got.double() - want.double()).abs().max().item()
            assert err < 1e-5, f"prompt {prompt} ({cached} cached): rows differ from the drafting call's (max error {err:.2e})"
            length = cache.get_seq_length()
            assert length == len(prompt), f"prompt {prompt}: the cache holds {length} positions afterwards, expected {len(prompt)}"
            cases += 1
        return f"{cases} prompts, with and without a cached prefix; logits and cache length checked"

    return _run("the drafting call by hand", check, verbose)


# ----------------------------------------------------------------------------------------
# 8. Which token each [LA]_j is trained against (PaSS training)
# ----------------------------------------------------------------------------------------


def grade_lookahead_targets(targets: Callable, *, verbose: bool = True) -> Grade:
    """``targets(tokens (T,), i, L) -> (L,)``: the training targets of [LA]_1..[LA]_L inserted after index i."""
    from ..training.train import lookahead_targets

    def check() -> str:
        g = _seed(8)
        cases = 0
        for L in (1, 3, 8):
            for _ in range(10):
                tokens = torch.randint(0, 1000, (40,), generator=g)
                i = int(torch.randint(0, 40 - L - 1, (1,), generator=g))
                want = lookahead_targets(tokens[None], torch.tensor([[i]]), L)[0, 0]
                _case(f"L={L}, inserted after index {i}")
                got = _as_tensor(targets(tokens.clone(), i, L), "the targets")
                assert got.tolist() == want.tolist(), f"L={L}, inserted after index {i}: you give {got.tolist()}, expected {want.tolist()}"
                cases += 1
        return f"{cases} random sequences and insertion points, L = 1, 3, 8"

    return _run("training targets of the look-ahead tokens", check, verbose)


# ----------------------------------------------------------------------------------------
# 9. The block attention mask of the training objective (extension: beyond the paper)
# ----------------------------------------------------------------------------------------


def grade_block_mask(block_mask: Callable, *, verbose: bool = True) -> Grade:
    """``block_mask(insertions (K,), T, L) -> bool (K L, T + K L)``: which keys each look-ahead row may see."""
    from ..training.train import block_attention_mask

    def check() -> str:
        g = _seed(9)
        cases = 0
        for K, L, T in ((1, 2, 6), (3, 2, 10), (4, 3, 16)):
            for _ in range(5):
                insertions = torch.randperm(T - L - 1, generator=g)[:K].sort().values
                want = block_attention_mask(insertions[None], T, L, torch.float32)[0, 0] == 0
                _case(f"K={K}, L={L}, T={T}, insertions {insertions.tolist()}")
                got = _as_tensor(block_mask(insertions.clone(), T, L), "the mask")
                assert got.dtype == torch.bool, f"return a bool tensor (True = may attend), got {got.dtype}"
                assert got.shape == want.shape, f"K={K}, L={L}, T={T}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
                wrong = (got != want).nonzero()
                if len(wrong):
                    row, col = wrong[0].tolist()
                    raise AssertionError(
                        f"K={K}, L={L}, T={T}, insertions {insertions.tolist()}: row {row} "
                        f"(block {row // L}, [LA]_{row % L + 1}), key {col}: you say {bool(got[row, col])}, expected {bool(want[row, col])}"
                    )
                cases += 1
        return f"{cases} random insertion sets"

    return _run("block attention mask of the training objective", check, verbose)


# ----------------------------------------------------------------------------------------
# 10. Two calls against a separate draft model (PaSS theory)
# ----------------------------------------------------------------------------------------


def grade_pass_vs_classic(compare: Callable, *, verbose: bool = True) -> Grade:
    """``compare(alpha, L) -> (pass_tokens_per_call, classic_tokens_per_target_call)`` with independent acceptance."""

    def check() -> str:
        grid = [(a, L) for a in (0.0, 0.2, 0.5, 0.9, 1.0) for L in (1, 4, 8)] + _random_grid(_seed(31))
        for a, L in grid:
            _case(f"alpha={a}, L={L}")
            got = compare(a, L)
            assert len(got) == 2, "return a pair (PaSS, classic)"
            want = (theory.pass_tokens_per_call(a, L), 1 + theory.expected_accepted(a, L))
            for name, g_, w in zip(("PaSS", "classic speculative sampling"), got, want):
                assert math.isclose(float(g_), w, rel_tol=1e-9, abs_tol=1e-12), (
                    f"alpha={a}, L={L}: {name} gives {float(g_):.6f}, expected {w:.6f}"
                )
        return f"{len(grid)} (alpha, L) pairs"

    return _run("two calls against a draft model", check, verbose)


# ----------------------------------------------------------------------------------------
# 11. Predict one-call PaSS on your own machine (extension: beyond the paper)
# ----------------------------------------------------------------------------------------


def grade_fused_prediction(predict: Callable, *, verbose: bool = True) -> Grade:
    """``predict(latency: dict n -> s, acceptance, groups) -> speed-up`` of one-call PaSS over autoregressive."""
    from ..experiments.latency import LatencyCurve, predicted_fused_speedup

    def check() -> str:
        g = _seed(11)
        for case in range(25):
            L = int(torch.randint(1, 7, (1,), generator=g))
            base, slope = 0.02, 0.1 * float(torch.rand(1, generator=g))
            latency = {n: base * (1 + slope * (n - 1)) for n in range(1, 64)}
            a = torch.rand(L, generator=g).sort(descending=True).values.cumprod(0).tolist()
            drawn = torch.randint(0, L + 1, (int(torch.randint(0, 3, (1,), generator=g)),), generator=g).tolist()
            groups = [list(range(L + 1)), sorted({0, *drawn}), sorted({a for a in drawn if a > 0})][case % 3]  # [] = two calls
            curve = LatencyCurve(list(latency), list(latency.values()), 0, 1, "cpu", "float32", "x")
            want = predicted_fused_speedup(curve, a, groups)
            _case(f"{case} (L={L}, groups {groups})")
            got = float(predict(dict(latency), list(a), list(groups)))
            assert math.isclose(got, want, rel_tol=1e-6), (
                f"case {case} (L={L}, groups {groups}): you predict {got:.4f}x, expected {want:.4f}x"
            )
        return "25 random latency curves, acceptance profiles and group sets"

    return _run("one-call PaSS on your machine", check, verbose)


# ----------------------------------------------------------------------------------------
# 12. Verification under sampling, end to end
# ----------------------------------------------------------------------------------------


def grade_verify(verify: Callable, *, verbose: bool = True) -> Grade:
    """``verify(q (K+1, V), p (K, V), drafts (K,), generator) -> (n, next_token)``: the whole rule under sampling.

    Token for token with ``pass_ref.verify_drafts`` given the same generator (K uniforms
    first, ``torch.rand(K, generator=generator, dtype=q.dtype)``, then one
    ``pass_ref.sampling.sample``), then PaSS with it on a tiny model: the same tokens as
    with the package's rule, sampling at T = 1.
    """
    from ..config import DecodingConfig
    from ..drafters.lookahead import LookaheadDrafter
    from ..loop import decode
    from ..sampling import SamplingConfig
    from ..verify import verify_drafts

    def check() -> str:
        g, cases, outcomes = _seed(12), 0, set()
        for K in (1, 2, 4, 7):
            for k in range(30):
                V = 6
                q = torch.stack([_random_pair(V, g, 2.0)[0] for _ in range(K + 1)])  # (K+1, V)
                p = torch.stack([_random_pair(V, g, 2.0)[1] for _ in range(K)])  # (K, V)
                if k % 5 == 0:
                    p = q[:K].clone()  # p == q: every draft is accepted
                drafts = torch.multinomial(p, 1, generator=g)[:, 0]  # (K,)
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
                want_n, want_token = verify_drafts(q, p, drafts, torch.Generator().manual_seed(seed))
                _case(f"{cases} (K={K}, generator seed {seed})")
                n, token = verify(q.clone(), p.clone(), drafts.clone(), torch.Generator().manual_seed(seed))
                assert (int(n), int(token)) == (want_n, int(want_token)), (
                    f"K={K}, generator seed {seed}: you return n={int(n)}, token {int(token)}; the rule gives n={want_n}, "
                    f"token {int(want_token)} (same generator: K uniforms first, then one sample)")
                outcomes.add(want_n == K)
                cases += 1
        assert outcomes == {True, False}, "internal: the cases should cover full and partial acceptance"
        tiny, la = _tiny_setup(1)
        for seed in range(6):
            _case(f"PaSS on a tiny model, T = 1, seed {seed}")
            runs = [decode(tiny, LookaheadDrafter(tiny, la), [3, 1, 4], DecodingConfig(
                24, SamplingConfig(temperature=1.0), generator=torch.Generator().manual_seed(seed + _HIDDEN[0])), verify_fn=rule)
                for rule in (verify_drafts, verify)]
            want, got = (out.new_tokens.tolist() for out in runs)
            assert got == want, f"PaSS with your verifier, seed {seed}: {got[:12]}... differs from the package's {want[:12]}..."
        return f"{cases} random blocks token for token, and PaSS on a tiny model sampling at T = 1"

    return _run("verification under sampling", check, verbose)


# ----------------------------------------------------------------------------------------
# 13. What the paper's speed-ups imply (PaSS theory)
# ----------------------------------------------------------------------------------------


def grade_implied_acceptance(implied: Callable, *, verbose: bool = True) -> Grade:
    """``implied(ar_seconds, pass_seconds, L, cost_ratio) -> (E[a], alpha or None)``: the accepted drafts per
    iteration a two-call PaSS timing implies, and the constant per-position acceptance that gives them."""

    def check() -> str:
        g = _seed(13)
        paper = [(12.52, 9.79, 4), (12.69, 9.46, 4), (12.72, 8.96, 4), (12.45, 10.23, 4), (10.52, 7.17, 4), (12.52, 10.03, 2),
                 (12.52, 9.66, 6), (12.52, 9.94, 8)]
        drawn = [(10.0, 10.0 / (0.6 + 1.4 * float(torch.rand(1, generator=g))), int(torch.randint(1, 9, (1,), generator=g)))
                 for _ in range(12)]
        cases = 0
        for ar, ps, L in paper + drawn + [(10.0, 3.0, 4), (10.0, 20.0, 4)]:  # too fast for L = 4 / slower than AR
            for cost in (1.0, 1.1, 1.0 + 0.5 * float(torch.rand(1, generator=g))):
                want_e, want_a = theory.implied_acceptance(ar / ps, L, cost)
                _case(f"AR {ar} s, PaSS {ps:.3f} s, L={L}, t(L+1)/t(1)={cost:.3f}")
                got = implied(ar, ps, L, cost)
                assert len(got) == 2, "return a pair (E[a], alpha)"
                e, a = got
                assert math.isclose(float(e), want_e, rel_tol=1e-9, abs_tol=1e-12), (
                    f"AR {ar} s, PaSS {ps:.3f} s, L={L}, t(L+1)/t(1)={cost:.3f}: E[a] = {float(e):.4f}, expected {want_e:.4f}")
                if want_a is None:
                    assert a is None, f"E[a] = {want_e:.3f} with L = {L}: no alpha in [0, 1] gives it; return None, not {a}"
                else:
                    assert a is not None and abs(float(a) - want_a) < 1e-6, (
                        f"L={L}, E[a] = {want_e:.4f}: alpha = {a}, expected {want_a:.6f}")
                cases += 1
        return f"{cases} timings: the paper's rows, random ones and impossible ones"

    return _run("acceptance implied by a speed-up", check, verbose)


# ----------------------------------------------------------------------------------------
# 14. How many samples catch a wrong rule? (statistics of the exactness test)
# ----------------------------------------------------------------------------------------


def grade_chi_square_power(samples_needed: Callable, *, verbose: bool = True) -> Grade:
    """``samples_needed(exact (M,), wrong (M,), significance, power) -> int``: the fewest samples with which the
    chi-square test rejects ``wrong`` with probability >= ``power`` (noncentral chi-square approximation)."""
    from .exactness import samples_needed as reference

    def check() -> str:
        g = _seed(14)
        cases = 0
        for M in (3, 8, 27, 64):
            for _ in range(4):
                e = torch.rand(M, generator=g, dtype=torch.float64) + 0.05
                e = e / e.sum()
                w = (e * (1 + 0.3 * (torch.rand(M, generator=g, dtype=torch.float64) - 0.5))).clamp_min(0)
                w = w / w.sum()
                significance = [1e-3, 1e-6][cases % 2]
                power = [0.5, 0.9, 0.99][cases % 3]
                want = reference(e.numpy(), w.numpy(), significance, power)
                _case(f"M={M} cells, significance {significance}, power {power}")
                got = int(samples_needed(e.numpy().copy(), w.numpy().copy(), significance, power))
                assert abs(got - want) <= max(1, 0.01 * want), (
                    f"M={M} cells, significance {significance}, power {power}: you need {got} samples, expected {want}")
                cases += 1
        return f"{cases} pairs of laws, 3 to 64 cells"

    return _run("power of the chi-square test", check, verbose)


# ----------------------------------------------------------------------------------------
# 15. The paper's training loop (PaSS training)
# ----------------------------------------------------------------------------------------


def _training_task(seed: int):
    """A tiny frozen model and token sequences whose tokens follow a skewed law: something look-ahead vectors can learn."""
    from ..models import tiny_llama

    tiny = tiny_llama(vocab_size=32, hidden_size=32, num_layers=2, seed=seed)
    g = torch.Generator().manual_seed(seed)
    law = torch.rand(32, generator=g, dtype=torch.float64) ** 6  # a few frequent tokens
    tokens = torch.multinomial(law / law.sum(), 96 * 24, replacement=True, generator=g).view(96, 24)  # (N, T)
    return tiny, tokens[:64], tokens[64:]


def heldout_lookahead_loss(model, vectors: torch.Tensor, sequences: torch.Tensor, L: int) -> float:
    """Mean cross-entropy of the L look-ahead outputs against the tokens 2..L+1 places after each insertion point."""
    losses = []
    with torch.no_grad():
        for row in sequences:
            for i in range(0, row.shape[0] - L - 1, 5):
                embeds = torch.cat([model.get_input_embeddings()(row[None, : i + 1]), vectors[None].to(model.dtype)], dim=1)
                logits = model(inputs_embeds=embeds).logits[0, -L:]  # (L, V)
                losses.append(torch.nn.functional.cross_entropy(logits.double(), row[i + 2 : i + 2 + L]).item())
    return sum(losses) / len(losses)


def grade_training_loop(train: Callable, *, verbose: bool = True) -> Grade:
    """``train(model, start (L, D), sequences (N, T), steps, generator) -> (L, D)``: the paper's loop on a frozen model.

    After 200 steps on a tiny model the held-out look-ahead loss must close at least a third
    of the gap between the start's loss and the entropy of the token law (the best a guess
    that ignores the context can do), with every model weight unchanged.
    """

    def check() -> str:
        L, steps = 3, 200
        tiny, train_set, heldout = _training_task(15 + _HIDDEN[0])
        weights = {name: w.clone() for name, w in tiny.state_dict().items()}
        start = tiny.get_input_embeddings().weight[0].detach().expand(L, -1).clone()  # one token's vector in every slot
        before = heldout_lookahead_loss(tiny, start, heldout, L)
        law = torch.bincount(train_set.flatten(), minlength=32).double() / train_set.numel()
        entropy = float(-(law[law > 0] * law[law > 0].log()).sum())
        _case(f"training on {train_set.shape[0]} sequences of {train_set.shape[1]} tokens, {steps} steps")
        trained = _as_tensor(train(tiny, start.clone(), train_set.clone(), steps, _seed(150)), "the trained vectors").detach()
        assert trained.shape == start.shape, f"return the (L, D) = {tuple(start.shape)} vectors, got {tuple(trained.shape)}"
        changed = [name for name, w in tiny.state_dict().items() if not torch.equal(w, weights[name])]
        assert not changed, f"the model must stay frozen: {changed[0]} changed"
        after = heldout_lookahead_loss(tiny, trained.to(start.dtype), heldout, L)
        closed = (before - after) / (before - entropy)
        assert closed >= 1 / 3, (
            f"held-out look-ahead loss {after:.3f} from {before:.3f} at the start; the token law's entropy is {entropy:.3f}: "
            f"you closed {100 * closed:.0f} % of that gap, train until it is at least a third")
        return (f"held-out look-ahead loss {before:.3f} at the start, {after:.3f} trained ({100 * closed:.0f} % of the way to "
                f"the entropy {entropy:.3f}); the model unchanged")

    return _run("the paper's training loop", check, verbose)


ASSIGNMENTS = {  # name -> (grader, difficulty, on PaSS itself?)
    "residual": (grade_residual, "easy", False),
    "accept_block": (grade_accept_block, "medium", False),
    "tokens_per_call": (grade_tokens_per_call, "easy", True),
    "simulate": (grade_simulation, "medium", True),
    "predict_speedup": (grade_speedup_prediction, "medium", True),
    "broken_verify": (grade_broken_verifier, "medium", False),
    "drafting_call": (grade_drafting_call, "hard", True),
    "targets": (grade_lookahead_targets, "easy", True),
    "block_mask": (grade_block_mask, "hard", True),
    "compare": (grade_pass_vs_classic, "medium", True),
    "predict_fused": (grade_fused_prediction, "hard", True),
    "verify": (grade_verify, "hard", False),
    "implied_acceptance": (grade_implied_acceptance, "medium", True),
    "chi_square_power": (grade_chi_square_power, "hard", False),
    "training_loop": (grade_training_loop, "hard", True),
}
