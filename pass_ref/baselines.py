"""The speculative methods PaSS is compared with, each ``decode`` with its drafter.

    prompt_lookup_generate   = the loop with drafts copied from the context (Saxena 2023)
    speculative_generate     = the loop with a draft model (Leviathan et al. 2023; Chen et al. 2023)

``**options``: the sampling and stopping keywords of ``DecodingConfig.from_options``, as in
``pass_ref.generate``.
"""

from __future__ import annotations

from .config import DecodingConfig
from .drafters.draft_model import DraftModelDrafter
from .drafters.lookup import PromptLookupDrafter
from .loop import decode
from .outputs import GenerationOutput


def prompt_lookup_generate(model, input_ids, *, num_draft_tokens: int, max_ngram: int = 3, **options) -> GenerationOutput:
    """Prompt lookup decoding (Saxena 2023): drafts copied from the context, verified exactly.

    Each iteration looks for the latest earlier occurrence of the last n-gram
    (n = ``max_ngram`` .. 1) and proposes the ``num_draft_tokens`` tokens that followed
    it; without a match the iteration is one plain call. A copied draft has a one-hot
    draft distribution, so under sampling it is accepted with probability q(x̃).
    """
    drafter = PromptLookupDrafter(num_draft_tokens, max_ngram)
    return decode(model, drafter, input_ids, DecodingConfig.from_options(model, **options))


def speculative_generate(model, draft_model, input_ids, *, num_draft_tokens: int, **options) -> GenerationOutput:
    """Classic speculative sampling with a draft model sharing the tokenizer.

    The draft model proposes ``num_draft_tokens`` tokens autoregressively; one target call
    verifies them. ``pass_ref.models.truncated_draft_model`` makes a draft model from the
    target's first layers.
    """
    drafter = DraftModelDrafter(model, draft_model, num_draft_tokens)
    return decode(model, drafter, input_ids, DecodingConfig.from_options(model, **options))
