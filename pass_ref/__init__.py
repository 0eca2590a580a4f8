"""pass_ref: a reference implementation of PaSS, Parallel Speculative Sampling.

Monea, Joulin, Grave (2023), arXiv 2311.13581. One frozen language model drafts L
future tokens in a single forward pass by reading L learned look-ahead embeddings,
then verifies the draft with speculative sampling, so the output follows the model's
own distribution exactly.

Notation (used in every module and notebook; **q is the target model**, as in the
paper's Algorithm 1; Leviathan et al. and transformers call the target p):

=====================  ====================================  ==========================
paper                  meaning                               code
=====================  ====================================  ==========================
q(· | x_1..x_n)        target model's next-token law         ``target_probs`` / ``q``
p_LA,i                 look-ahead (draft) law at [LA]_i      ``draft_probs`` / ``p``
[LA]_1..[LA]_L         look-ahead embeddings                 ``LookaheadEmbeddings``
L                      number of look-ahead tokens           ``num_lookahead``
x_{n+1}                exact token of the drafting call      ``Draft.exact``
x̃_1..x̃_L               draft tokens                          ``Draft.tokens``
r ~ U[0, 1]            acceptance uniforms                   inside ``verify_drafts``
n accepted             accepted prefix length                ``num_accepted`` / ``n``
=====================  ====================================  ==========================

Paper indices are 1-based (x̃_1..x̃_L); code indices are 0-based (``tokens[0]`` is x̃_1).
"""

from .cache import CachedModel
from .training.corpora import Corpus, heldout_prompts, load_corpus, tokenize_windows
from .decoding import autoregressive_generate, pass_generate, prompt_lookup_generate, speculative_generate, speculative_loop
from .drafters import Draft, DraftModelDrafter, HybridDrafter, LookaheadDrafter, PromptLookupDrafter, lookahead_logits
from .fused import FusedLookaheadDrafter, group_attention_mask, group_position_ids
from .experiments.evaluation import AcceptanceResult, compare_lookaheads, measure_acceptance
from .lookahead import LookaheadEmbeddings
from .models import default_gguf_path, load_model, tiny_llama, truncated_draft_model
from .outputs import GenerationOutput, GenerationStats, IterationRecord
from .sampling import SamplingConfig, logits_to_probs, sample
from .training.train import TrainConfig, TrainHistory, evaluate_loss, lookahead_loss, train_lookahead
from .trained import load_lookahead
from .verify import acceptance_probs, residual_distribution, verify_drafts
from .viz import highlight_html, highlight_terminal, summary_line
from . import hf  # noqa: E402  (model.generate(custom_generate=pass_ref.hf.pass_decoding, ...))

__version__ = "0.1.0"

__all__ = [
    "AcceptanceResult",
    "CachedModel",
    "Corpus",
    "Draft",
    "DraftModelDrafter",
    "FusedLookaheadDrafter",
    "HybridDrafter",
    "GenerationOutput",
    "GenerationStats",
    "IterationRecord",
    "LookaheadDrafter",
    "LookaheadEmbeddings",
    "PromptLookupDrafter",
    "SamplingConfig",
    "TrainConfig",
    "TrainHistory",
    "acceptance_probs",
    "autoregressive_generate",
    "compare_lookaheads",
    "default_gguf_path",
    "evaluate_loss",
    "group_attention_mask",
    "group_position_ids",
    "heldout_prompts",
    "highlight_html",
    "highlight_terminal",
    "load_corpus",
    "load_lookahead",
    "load_model",
    "logits_to_probs",
    "lookahead_logits",
    "lookahead_loss",
    "measure_acceptance",
    "pass_generate",
    "prompt_lookup_generate",
    "residual_distribution",
    "sample",
    "speculative_generate",
    "speculative_loop",
    "summary_line",
    "tiny_llama",
    "tokenize_windows",
    "train_lookahead",
    "truncated_draft_model",
    "verify_drafts",
]
