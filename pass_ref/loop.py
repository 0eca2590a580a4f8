"""The one decoding loop, shared by every method (the paper's Algorithm 1, any drafter).

One iteration (step numbers follow Algorithm 1; ``docs/paper.md``):
  1. drafting: the drafter proposes K drafts with their processed probabilities p_t.
     PaSS's drafting call is a target call that also yields x_{n+1} ~ q, which is
     committed at once (it is exact, not a draft);
  2. validation: one target call on [uncached tokens, x̃_1..x̃_K] (plus whatever the
     drafter lets ride along) gives q_1..q_{K+1};
  3. ``verify_drafts`` accepts a prefix of a drafts and samples the next token from the
     residual (a < K) or from q_{K+1} (a = K); the cache is cropped to the accepted prefix;
  4. the new token has no KV yet: it is the first input of the next call.
The paper's pseudo-code increments n (its prefix length) inside its loop; here the iteration works from a
fixed base (the sequence before the iteration) and commits tokens at its end.

Cache invariant after every iteration: the target's KV cache holds every token of the
sequence except the last one. The loop holds no clock and never asks what its drafter
is. Batch size 1. Notation: q = target (``pass_ref.verify``).
"""

from __future__ import annotations

from typing import Callable

import torch

from .cache import open_cache
from .checks import check_budget, prompt_ids
from .config import DecodingConfig
from .drafters.base import Drafter, DraftState
from .outputs import ACCEPTED, BONUS, CORRECTED, EXACT, GenerationOutput, GenerationStats, IterationRecord
from .sampling import logits_to_probs
from .verify import acceptance_probs, verify_drafts

OnTokens = Callable[[list[int]], None]  # receives each iteration's committed tokens (a streamer)


class _Sequence:
    """The growing sequence, where each token came from, and the stopping rules."""

    def __init__(self, prompt: list[int], config: DecodingConfig, on_tokens: OnTokens | None) -> None:
        self.tokens, self.prompt_len, self.config, self.on_tokens = list(prompt), len(prompt), config, on_tokens
        self.sources: list[str] = []
        self.rejected: list[tuple[int, int]] = []  # (index in the new tokens, rejected draft)
        self.finished = config.max_new_tokens == 0

    @property
    def remaining(self) -> int:
        return self.config.max_new_tokens - (len(self.tokens) - self.prompt_len)

    def commit(self, tokens: list[int], sources: list[str]) -> bool:
        """Append tokens until one must end generation; hand them on; return False once finished."""
        fresh = []
        for token, source in zip(tokens, sources):
            self.tokens.append(token)
            self.sources.append(source)
            fresh.append(token)
            self.finished = token in self.config.eos or self.remaining == 0
            if not self.finished and self.config.stop is not None:
                self.finished = bool(self.config.stop(self.tokens[self.prompt_len :]))
            if self.finished:
                break
        if fresh and self.on_tokens is not None:
            self.on_tokens(fresh)
        return not self.finished


def decode(model, drafter: Drafter, input_ids, config: DecodingConfig, *, on_tokens: OnTokens | None = None,
           verify_fn=verify_drafts) -> GenerationOutput:
    """Decode ``input_ids`` with ``drafter``'s drafts, verified exactly; see the module docstring.

    ``on_tokens(tokens)`` receives each iteration's committed tokens as soon as they are
    final. ``verify_fn`` exists so tests can plug in a wrong rule and see it caught.
    """
    prompt = prompt_ids(input_ids, model)
    check_budget(len(prompt), config.max_new_tokens, drafter.positions_ahead, model)
    seq, target = _Sequence(prompt, config, on_tokens), open_cache(model)
    stats, records, g = GenerationStats(), [], config.generator
    with torch.inference_mode():
        while not seq.finished:
            # Step 1: drafting. PaSS's drafting call also yields x_{n+1} ~ q: committed at once.
            draft = drafter.propose(DraftState(target, seq.tokens, seq.remaining - 1, config.sampling, g))
            exact = None if draft.exact is None else int(draft.exact)
            if exact is not None and not seq.commit([exact], [EXACT]):
                stats.iterations += 1
                break
            # Step 2: one validation call on the uncached tokens, the drafts and what rides along.
            drafts, K = draft.tokens.tolist(), draft.tokens.shape[0]
            pending = seq.tokens[target.length :]
            logits = target.forward(pending + drafts, drafter.extra_inputs(target, len(pending), K), keep=K + 1)  # (K+1+M, V)
            q = logits_to_probs(logits[: K + 1], config.sampling)  # (K+1, V)
            p, x = draft.probs.to(q.device, q.dtype), draft.tokens.to(q.device)  # (K, V), (K,): drafts follow the LM head
            # Step 3: accept a drafts, sample the next token (residual or bonus), crop the rejected drafts' KV.
            a, next_token = verify_fn(q, p, x, g)
            target.rollback(len(seq.tokens) + a)
            drafter.on_verified(a, len(seq.tokens) + a + 1, logits[K + 1 :])
            stats.record_block(K, a)
            stats.iterations += 1
            before, last = len(seq.tokens), CORRECTED if a < K else (BONUS if K > 0 else EXACT)
            seq.commit(drafts[:a] + [int(next_token)], [ACCEPTED] * a + [last])
            if a < K and len(seq.tokens) == before + a + 1:  # the correction was committed: show what it replaced
                seq.rejected.append((before - seq.prompt_len + a, drafts[a]))
            if not seq.finished and target.length != len(seq.tokens) - 1:
                raise RuntimeError("cache invariant broken: the cache must hold all but the last token")
            if config.trace:
                accept = acceptance_probs(q, p, x).tolist() if K else []
                records.append(IterationRecord(exact, drafts, accept, a, int(next_token), target.length, len(seq.tokens)))
    stats.model_calls, stats.call_sizes = target.calls, list(target.call_sizes)
    stats.draft_model_calls, stats.new_tokens = drafter.model_calls, len(seq.tokens) - seq.prompt_len
    ids = torch.tensor(seq.tokens, dtype=torch.long)
    return GenerationOutput(new_tokens=ids[len(prompt) :], sequences=ids, stats=stats, sources=seq.sources,
                            rejected=seq.rejected, trace=records if config.trace else None)
