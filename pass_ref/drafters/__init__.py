"""Drafters: who proposes the tokens that verification checks, one class per method.

    base.NoDrafter                 autoregressive decoding: no drafts
    lookahead.LookaheadDrafter     PaSS, Algorithm 1: the target's drafting call with L look-ahead vectors
    fused.FusedLookaheadDrafter    one-call PaSS (ours): the drafting call rides along with validation
    lookup.PromptLookupDrafter     drafts copied from the context (prompt lookup decoding)
    lookup.HybridDrafter           prompt lookup when it matches, another drafter otherwise
    draft_model.DraftModelDrafter  a second, smaller model drafts (classic speculative sampling)

Each is a ``base.Drafter``: the three hooks the loop calls. ``pass_ref`` exports them all.
"""
