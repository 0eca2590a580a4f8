"""pass_ref: a reference implementation of PaSS, Parallel Speculative Sampling.

Monea, Joulin, Grave (2023), arXiv 2311.13581. One frozen language model drafts L
future tokens in a single forward pass by reading L learned look-ahead embeddings,
then verifies the draft with speculative sampling, so the output follows the model's
own distribution exactly.

Notation (used in every module and notebook; **q is the target model**, as in the
paper's Algorithm 1; Leviathan et al. and transformers call the target p). The full
glossary is in ``docs/architecture.md``.

=====================  ====================================  ==========================
paper                  meaning                               code
=====================  ====================================  ==========================
q(· | x_1..x_n)        target model's next-token law         ``q`` / ``target_probs``
p_LA,i                 look-ahead (draft) law at [LA]_i      ``p`` / ``draft_probs``
[LA]_1..[LA]_L         look-ahead embeddings                 ``LookaheadEmbeddings``
L                      number of look-ahead tokens           ``L`` (keyword ``num_lookahead``)
K                      drafts verified by one call           ``K`` (keyword ``num_draft_tokens``)
x_{n+1}                exact token of the drafting call      ``Draft.exact``
x̃_1..x̃_K               draft tokens                          ``Draft.tokens``
n                      accepted drafts of an iteration       ``n``
=====================  ====================================  ==========================

Paper indices are 1-based (x̃_1..x̃_L); code indices are 0-based (``tokens[0]`` is x̃_1).

The core is imported here; ``pass_ref.training``, ``pass_ref.experiments`` and
``pass_ref.course`` are imported by name.
"""

from . import hf
from .baselines import prompt_lookup_generate, speculative_generate
from .cache import CachedModel, ExtraInputs
from .config import DecodingConfig
from .drafters.base import Draft, Drafter, DraftState, NoDrafter
from .drafters.draft_model import DraftModelDrafter
from .drafters.fused import FusedLookaheadDrafter, group_attention_mask, group_position_ids
from .drafters.lookahead import LookaheadDrafter, lookahead_logits
from .drafters.lookup import HybridDrafter, PromptLookupDrafter
from .generate import autoregressive_generate, pass_generate
from .lookahead import LookaheadEmbeddings
from .loop import decode
from .methods import METHODS, make_drafter, register
from .models import default_gguf_path, load_model, tiny_llama, truncated_draft_model
from .outputs import GenerationOutput, GenerationStats, IterationRecord
from .sampling import SamplingConfig, logits_to_probs, sample
from .static import static_model
from .trained import load_lookahead
from .verify import acceptance_probs, residual_distribution, verify_drafts
from .viz import highlight_html, highlight_terminal, summary_line

__version__ = "0.1.0"

__all__ = [
    "METHODS", "CachedModel", "DecodingConfig", "Draft", "DraftModelDrafter", "DraftState", "Drafter", "ExtraInputs",
    "FusedLookaheadDrafter", "GenerationOutput", "GenerationStats", "HybridDrafter", "IterationRecord",
    "LookaheadDrafter", "LookaheadEmbeddings", "NoDrafter", "PromptLookupDrafter", "SamplingConfig",
    "acceptance_probs", "autoregressive_generate", "decode", "default_gguf_path", "group_attention_mask",
    "group_position_ids", "hf", "highlight_html", "highlight_terminal", "load_lookahead", "load_model",
    "logits_to_probs", "lookahead_logits", "make_drafter", "pass_generate", "prompt_lookup_generate", "register",
    "residual_distribution", "sample", "speculative_generate", "static_model", "summary_line", "tiny_llama", "truncated_draft_model",
    "verify_drafts",
]
