"""PaSS drafting with distinct look-ahead vectors inside vLLM: a ``custom_class`` proposer.

vLLM builds ``LookaheadProposer(vllm_config)`` in its worker, calls ``load_model(target)`` and
then, every step, ``propose(sampled_token_ids, num_tokens_no_spec, token_ids_cpu)``: row i's
context is ``token_ids_cpu[i, :num_tokens_no_spec[i]]`` (it ends with the token just sampled)
and the answer is at most K draft ids per row. Drafts come without probabilities, so vLLM's
rejection sampler treats them as one-hot drafts, which is exact under greedy and sampled
decoding alike. The drafts are the argmax of PaSS's drafting call: one forward pass over the
context followed by ``[LA]_1..[LA]_{K-1}``; its last real row gives draft 1 and the row of
``[LA]_j`` gives draft j + 1.

Where the vectors come from: ``PASS_REF_LOOKAHEAD`` (a folder written by
``LookaheadEmbeddings.save_pretrained`` or shipped with pass-ref) in the environment vLLM runs
in. What it costs, plainly: vLLM's own model classes are not transformers', so the proposer
loads a **second copy of the weights** with transformers (from the target's folder, in the
target's dtype) and keeps its **own KV caches**, one per recent context, matched by token
prefix because vLLM moves requests between rows from step to step; a context that matches no
cache is recomputed from its start. Batched requests are drafted one after another.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch

from ..cache import CachedModel, ExtraInputs
from ..lookahead import LookaheadEmbeddings

LOOKAHEAD_ENV = "PASS_REF_LOOKAHEAD"


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class LookaheadProposer:
    """A vLLM ``custom_class`` proposer drafting with a pass-ref look-ahead set (module docstring)."""

    def __init__(self, vllm_config, *, lookahead_dir: str | None = None, max_caches: int = 16) -> None:
        spec = vllm_config.speculative_config
        self.k = int(spec.num_speculative_tokens)
        self.model_dir = vllm_config.model_config.model
        self.dtype = vllm_config.model_config.dtype
        self.max_model_len = int(vllm_config.model_config.max_model_len)
        self.lookahead_dir = lookahead_dir or os.environ.get(LOOKAHEAD_ENV)
        if not self.lookahead_dir:
            raise ValueError(f"set {LOOKAHEAD_ENV} to the look-ahead set's folder before starting vLLM")
        self.max_caches = max_caches
        self.model = None
        self.lookahead = None
        self.caches: OrderedDict[int, CachedModel] = OrderedDict()  # most recently used last
        self._next_id = 0
        self.forward_passes = 0

    def load_model(self, target_model=None) -> None:
        """Load the second copy of the weights (transformers) and the look-ahead set; check they match."""
        from transformers import AutoModelForCausalLM

        dtype = self.dtype if isinstance(self.dtype, torch.dtype) else getattr(torch, str(self.dtype), torch.float32)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype).eval().requires_grad_(False)
        self.lookahead = LookaheadEmbeddings.from_pretrained(self.lookahead_dir, model=self.model)
        L = self.lookahead.num_lookahead
        if not 1 <= self.k <= L + 1:
            raise ValueError(f"num_speculative_tokens={self.k}: K drafts read K - 1 look-ahead vectors and this set "
                             f"has {L}, so K must be in 1..{L + 1}")

    def _cache_for(self, context: list[int]) -> CachedModel:
        """The cache sharing the longest prefix with ``context`` (a fresh one if none shares any)."""
        best, best_len = None, 0
        for key, cached in self.caches.items():
            common = _common_prefix(cached.tokens, context)
            if common > best_len:
                best, best_len = key, common
        if best is None:
            if len(self.caches) >= self.max_caches:
                self.caches.popitem(last=False)
            best, self._next_id = self._next_id, self._next_id + 1
            self.caches[best] = CachedModel(self.model)
        self.caches.move_to_end(best)
        return self.caches[best]

    @torch.inference_mode()
    def draft(self, context: list[int]) -> list[int]:
        """K greedy drafts after ``context``: one drafting call on the uncached tail + K - 1 vectors."""
        cached = self._cache_for(context)
        tail = cached.sync(context)  # crops to the common prefix; at least the last token is fed again
        k = self.k - 1
        vectors = ExtraInputs(self.lookahead.drafting_inputs(self.model, k), layer_delta=self.lookahead.layer_delta(torch.arange(k)))
        logits = cached.forward(tail, vectors, keep=1)  # (1 + k, V): the last real row, then [LA]_1..[LA]_k
        self.forward_passes += 1
        return logits.argmax(-1).tolist()

    def propose(self, sampled_token_ids, num_tokens_no_spec, token_ids_cpu, slot_mappings=None) -> list[list[int]]:
        """At most K drafts per row; ``[]`` for a row that sampled nothing or has no room left."""
        if self.model is None:
            self.load_model()
        drafts = []
        for i, sampled in enumerate(sampled_token_ids):
            n = int(num_tokens_no_spec[i])
            if not len(sampled) or n + self.k >= self.max_model_len:
                drafts.append([])
                continue
            drafts.append(self.draft([int(t) for t in token_ids_cpu[i, :n]]))
        return drafts
