"""Training the look-ahead embeddings: corpora, the look-ahead objective, self-distillation.

The frozen target model never changes; only ``LookaheadEmbeddings`` are optimised
(``train_lookahead``). ``docs/paper.md`` states the paper's recipe, ``TrainConfig`` its
defaults and our extension.
"""

from .corpora import Corpus, heldout_prompts, load_corpus, tokenize_windows
from .train import TrainConfig, TrainHistory, evaluate_loss, lookahead_loss, train_lookahead

__all__ = [
    "Corpus",
    "TrainConfig",
    "TrainHistory",
    "evaluate_loss",
    "heldout_prompts",
    "load_corpus",
    "lookahead_loss",
    "tokenize_windows",
    "train_lookahead",
]
