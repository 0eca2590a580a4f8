"""The one method table: every drafting method by name, and ``make_drafter``.

    drafter = make_drafter("pass", model, lookahead, num_lookahead=4)
    out = decode(model, drafter, ids, DecodingConfig(max_new_tokens=64))

The benchmark, the doctor, the CLI, the transformers route and the exactness tests iterate
over ``METHODS``. Adding a method is one ``Drafter`` class and one ``register`` call (a
test file may register its own; ``docs/architecture.md`` shows one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .drafters.base import Drafter, NoDrafter
from .drafters.draft_model import DraftModelDrafter
from .drafters.lookahead import LookaheadDrafter
from .drafters.lookup import PromptLookupDrafter
from .generate import pass_drafter
from .lookahead import LookaheadEmbeddings


@dataclass(frozen=True)
class Method:
    """One row of the table."""

    name: str
    label: str  # how tables and reports name it
    build: Callable[..., Drafter]  # build(model, lookahead, **options) -> Drafter
    needs_lookahead: bool = False  # a trained LookaheadEmbeddings set is required
    options: tuple[str, ...] = ()  # keyword options ``build`` takes
    defaults: dict = field(default_factory=dict)  # their values when not given
    required: tuple[str, ...] = ()  # options without a default (e.g. a draft model)
    size: str | None = None  # the option a table shows as its draft size ("num_lookahead", "num_draft_tokens")
    paper: bool = False  # one of the paper's rows (autoregressive, [UNK] look-ahead, PaSS)
    control: bool = False  # a baseline to compare with, never a method to run for speed


METHODS: dict[str, Method] = {}


def register(name: str, label: str, **fields) -> Callable:
    """Decorator: add ``build`` to the table under ``name`` (the table is the only list of methods)."""
    def add(build: Callable[..., Drafter]) -> Callable[..., Drafter]:
        if name in METHODS:
            raise ValueError(f"a method named {name!r} is already registered")
        METHODS[name] = Method(name, label, build, **fields)
        return build
    return add


def make_drafter(method: str, model, lookahead: LookaheadEmbeddings | None = None, **options) -> Drafter:
    """The drafter of ``method`` for ``model`` (see ``METHODS`` for each one's options)."""
    entry = METHODS.get(method)
    if entry is None:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise TypeError(f"method {method!r} takes no option {unknown}; its options: {list(entry.options)}")
    missing = [name for name in entry.required if options.get(name) is None]
    if missing:
        raise ValueError(f"method {method!r} needs {missing}")
    if entry.needs_lookahead and not isinstance(lookahead, LookaheadEmbeddings):
        raise TypeError(f"lookahead must be LookaheadEmbeddings, got {type(lookahead).__name__}")
    if not entry.needs_lookahead and lookahead is not None:
        raise ValueError(f"method {method!r} drafts without look-ahead embeddings; do not pass a set")
    return entry.build(model, lookahead, **{**entry.defaults, **options})


@register("ar", "autoregressive", paper=True)
def _autoregressive(model, lookahead):
    return NoDrafter()


@register("pass-unk", "[UNK] look-ahead", options=("num_lookahead",), defaults={"num_lookahead": 4}, size="num_lookahead",
          paper=True, control=True)
def _unk_lookahead(model, lookahead, num_lookahead):
    return LookaheadDrafter(model, LookaheadEmbeddings.from_token(model, num_lookahead))


@register("pass", "PaSS (two calls)", needs_lookahead=True, options=("num_lookahead",), size="num_lookahead", paper=True)
def _pass(model, lookahead, num_lookahead=None):
    return pass_drafter(model, lookahead, num_lookahead)


@register("pass-fused", "PaSS (one call)", needs_lookahead=True, options=("num_lookahead", "groups"), size="num_lookahead")
def _pass_fused(model, lookahead, num_lookahead=None, groups=None):
    return pass_drafter(model, lookahead, num_lookahead, fused=True, groups=groups)


@register("speculative", "draft model", options=("draft_model", "num_draft_tokens"), defaults={"num_draft_tokens": 4},
          required=("draft_model",), size="num_draft_tokens")
def _draft_model(model, lookahead, draft_model, num_draft_tokens):
    return DraftModelDrafter(model, draft_model, num_draft_tokens)


@register("lookup", "prompt lookup", options=("num_draft_tokens", "max_ngram"), defaults={"num_draft_tokens": 10, "max_ngram": 3},
          size="num_draft_tokens")
def _prompt_lookup(model, lookahead, num_draft_tokens, max_ngram):
    return PromptLookupDrafter(num_draft_tokens, max_ngram)


@register("hybrid", "hybrid (one call)", needs_lookahead=True, options=("num_lookahead", "groups", "lookup_tokens", "max_ngram", "fused"),
          defaults={"fused": True}, size="num_lookahead")
def _hybrid(model, lookahead, num_lookahead=None, groups=None, lookup_tokens=None, max_ngram=3, fused=True):
    """Prompt lookup (``lookup_tokens`` drafts, default max(L, 4)) with one-call (or two-call) PaSS otherwise."""
    return pass_drafter(model, lookahead, num_lookahead, fused=fused, groups=groups, prompt_lookup=True,
                        lookup_tokens=lookup_tokens, max_ngram=max_ngram)
