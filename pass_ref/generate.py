"""PaSS and its autoregressive baseline: each is ``decode`` (``pass_ref.loop``) with one drafter.

    autoregressive_generate  = the loop with no drafter (one call per token)
    pass_generate            = the loop with PaSS's look-ahead drafter (Algorithm 1)
        fused=True           = ... drafting inside the validation call (one call per iteration)
        prompt_lookup=True   = ... inside a hybrid (copy from the context when possible)

The other speculative methods PaSS is compared with are in ``pass_ref.baselines``.

``**options`` are the shared sampling and stopping keywords of ``DecodingConfig.from_options``:
``max_new_tokens`` (required), ``temperature``, ``top_k``, ``top_p`` (0 = greedy),
``eos_token_id``, ``stop``, ``generator`` or ``seed``, ``trace``.
"""

from __future__ import annotations

from .checks import positive_int
from .config import DecodingConfig
from .drafters.base import Drafter, NoDrafter
from .drafters.fused import FusedLookaheadDrafter
from .drafters.lookahead import LookaheadDrafter
from .drafters.lookup import HybridDrafter, PromptLookupDrafter
from .lookahead import LookaheadEmbeddings
from .loop import decode
from .outputs import GenerationOutput


def autoregressive_generate(model, input_ids, **options) -> GenerationOutput:
    """Plain decoding with a KV cache: one model call per token (the baseline).

    ``input_ids``: the prompt, 1-D or (1, T) (batch size 1). ``options``: see the module docstring.
    """
    return decode(model, NoDrafter(), input_ids, DecodingConfig.from_options(model, **options))


def pass_generate(model, lookahead: LookaheadEmbeddings, input_ids, *, num_lookahead: int | None = None, fused: bool = False,
                  groups=None, prompt_lookup: bool = False, lookup_tokens: int | None = None, max_ngram: int = 3,
                  **options) -> GenerationOutput:
    """PaSS: parallel speculative sampling with look-ahead embeddings (Algorithm 1).

    Two target calls per iteration (drafting, validation), each iteration yielding 2 to
    L + 2 tokens; the output law is exactly the target's. ``num_lookahead`` uses only
    the first L vectors of the set (by causality they draft as they do inside the full set).

    Beyond the paper (each exact, see ``docs/architecture.md``):
        fused: one call per iteration, the next drafting call riding along with the
            validation call as look-ahead groups (``pass_ref.drafters.fused``).
        groups: with ``fused``, the numbers of accepted drafts that get a group (None: every
            a <= L). Fewer groups make cheaper calls.
        prompt_lookup: draft by copying from the context when the last n-gram (up to
            ``max_ngram`` tokens) occurred before, up to ``lookup_tokens`` drafts (default
            max(L, 4)); by look-ahead embeddings otherwise.
    ``options``: the sampling and stopping keywords (module docstring).
    """
    drafter = pass_drafter(model, lookahead, num_lookahead, fused=fused, groups=groups, prompt_lookup=prompt_lookup,
                           lookup_tokens=lookup_tokens, max_ngram=max_ngram)
    return decode(model, drafter, input_ids, DecodingConfig.from_options(model, **options))


def pass_drafter(model, lookahead: LookaheadEmbeddings, num_lookahead: int | None = None, *, fused: bool = False,
                 groups=None, prompt_lookup: bool = False, lookup_tokens: int | None = None, max_ngram: int = 3) -> Drafter:
    """The drafter of ``pass_generate``: the method table's "pass", "pass-fused" and "hybrid" entries
    and ``pass_ref.hf`` build theirs here too, so every route runs the same PaSS."""
    if not isinstance(lookahead, LookaheadEmbeddings):
        raise TypeError(f"lookahead must be LookaheadEmbeddings, got {type(lookahead).__name__}")
    if groups is not None and not fused:
        raise ValueError("groups only apply to fused=True")
    if lookup_tokens is not None and not prompt_lookup:
        raise ValueError("lookup_tokens only applies to prompt_lookup=True")
    if fused:
        drafter = FusedLookaheadDrafter(model, lookahead, num_lookahead, groups)
    else:
        drafter = LookaheadDrafter(model, lookahead, num_lookahead)
    if not prompt_lookup:
        return drafter
    lookup_tokens = max(drafter.L, 4) if lookup_tokens is None else positive_int("lookup_tokens", lookup_tokens)
    return HybridDrafter(PromptLookupDrafter(lookup_tokens, max_ngram, name="lookup_tokens"), drafter)
