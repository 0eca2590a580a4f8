"""Offline training corpora with a fixed train / held-out split (the paper's data are not offline; ``docs/paper.md``).

The paper trains one set of look-ahead embeddings per domain: English Wikipedia for
text, the Python split of The Stack for code. Nothing can be downloaded here, so we use
what every Python installation carries:

- **code**: the ``.py`` files of the standard library (``sysconfig`` "stdlib" path),
  without test suites, ``site-packages``, ``idlelib``, ``lib2to3`` and demo folders;
- **text**: the English prose of ``pydoc_data/topics.py`` (79 help topics).

Split rule (stable across machines and runs): a document is *held out* when the first
8 hex digits of sha256 of its name (relative path for code, topic key for text) are
divisible by 10, i.e. about 10 % of documents. The rest is *train*. HumanEval never
enters either split (it is evaluation only; see ``pass_ref.experiments.data``).

The standard library differs slightly between Python versions; the metadata of every
trained checkpoint records the Python version and the number of documents it saw.
"""

from __future__ import annotations

import ast
import hashlib
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

from ..trained import DOMAINS

SPLITS = ("train", "heldout")
_EXCLUDED_DIRS = {"site-packages", "dist-packages", "__pycache__", "idlelib", "lib2to3", "turtledemo", "ensurepip", "tkinter"}


@dataclass(frozen=True)
class Corpus:
    """Documents of one domain and split, in a fixed order (sorted by name)."""

    domain: str
    split: str
    names: tuple[str, ...]
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def describe(self) -> dict:
        """What a checkpoint's metadata records about its data."""
        return {
            "domain": self.domain,
            "split": self.split,
            "documents": len(self.texts),
            "characters": sum(map(len, self.texts)),
            "python": platform.python_version(),
            "split_rule": "held out iff int(sha256(name)[:8], 16) % 10 == 0",
        }


def is_heldout(name: str) -> bool:
    """The split rule: about one document in ten is held out, by a hash of its name."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 10 == 0


def _code_documents() -> dict[str, str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p in _EXCLUDED_DIRS or p.startswith("test") for p in parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            docs["/".join(parts)] = text
    return docs


def _text_documents() -> dict[str, str]:
    from pydoc_data.topics import topics

    return {name: topics[name] for name in sorted(topics) if topics[name].strip()}


def load_corpus(domain: str, split: str = "train") -> Corpus:
    """The ``"code"`` or ``"text"`` corpus, ``"train"`` or ``"heldout"`` split."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    docs = _code_documents() if domain == "code" else _text_documents()
    keep = [(n, t) for n, t in docs.items() if is_heldout(n) == (split == "heldout")]
    if not keep:
        raise FileNotFoundError(f"no {domain} documents found for split {split!r} in this Python installation")
    names, texts = zip(*keep)
    return Corpus(domain, split, names, texts)


def _documents(corpus) -> list[str]:
    if isinstance(corpus, Corpus):
        return list(corpus.texts)
    if isinstance(corpus, str):
        return [corpus]
    if isinstance(corpus, (list, tuple)) and all(isinstance(t, str) for t in corpus):
        return list(corpus)
    raise TypeError(f"corpus must be a Corpus, a string or a list of strings, got {type(corpus).__name__}")


def tokenize_windows(tokenizer, corpus, seq_len: int, *, max_windows: int | None = None) -> torch.Tensor:
    """(N, seq_len) training windows: documents joined by EOS, cut into non-overlapping windows.

    Raises ``ValueError`` for an empty corpus or one shorter than a single window.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise ValueError(f"seq_len must be an int >= 2, got {seq_len!r}")
    texts = [t for t in _documents(corpus) if t.strip()]
    if not texts:
        raise ValueError("the corpus is empty: give at least one non-empty document")
    sep = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False).input_ids)
        if sep is not None:
            ids.append(sep)
        if max_windows is not None and len(ids) >= max_windows * seq_len:
            break
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"the corpus has {len(ids)} tokens, fewer than one window of seq_len={seq_len}")
    if max_windows is not None:
        n = min(n, max_windows)
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)  # (N, T)


def _docstring_ends(text: str) -> list[int]:
    """Character offsets just after each documented function's docstring line (where its body starts)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):  # a file of another Python version's grammar: skip it
        return []
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    ends = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node, clean=False) is not None:
            if len(node.body) > 1:  # a body after the docstring, as a HumanEval solution has
                ends.append(starts[min(node.body[0].end_lineno, len(starts) - 1)])
    return sorted(ends)


def function_windows(tokenizer, corpus, seq_len: int, prompt_len: int, *, max_windows: int | None = None) -> torch.Tensor:
    """(N, seq_len) windows whose first ``prompt_len`` tokens end where a documented function's body starts.

    A HumanEval prompt is a function's signature and docstring; the model writes the body.
    These windows put the same moment at token ``prompt_len``: their prompt is the text just
    before the end of a docstring line (its newline included), tokenized as a prompt is, and
    the rest is the source that followed (replaced by the model's own continuation when
    training self-distils). One window per function that has statements after its
    docstring, in document order; functions too close to the start or end of their file
    for a whole window are skipped. Raises ``ValueError`` when no function gives one.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= prompt_len < seq_len:
        raise ValueError(f"need ints 1 <= prompt_len < seq_len, got prompt_len={prompt_len!r}, seq_len={seq_len!r}")
    rows = []
    for text in _documents(corpus):
        for end in _docstring_ends(text):
            # 8 characters per token is generous for source code: the slices hold the tokens needed.
            head = tokenizer(text[max(0, end - 8 * prompt_len) : end], add_special_tokens=False).input_ids
            tail = tokenizer(text[end : end + 8 * (seq_len - prompt_len)], add_special_tokens=False).input_ids
            if len(head) > prompt_len and len(tail) >= seq_len - prompt_len:  # > : the slice's first token may be cut
                rows.append(head[-prompt_len:] + tail[: seq_len - prompt_len])
            if max_windows is not None and len(rows) >= max_windows:
                return torch.tensor(rows, dtype=torch.long)  # (N, T)
    if not rows:
        raise ValueError("no documented function in the corpus leaves a whole window around its docstring's end")
    return torch.tensor(rows, dtype=torch.long)  # (N, T)


def heldout_prompts(tokenizer, domain: str, n: int, prompt_len: int = 32, *, seed: int = 0) -> list[torch.Tensor]:
    """``n`` prompts of ``prompt_len`` tokens from held-out documents (the paper's 32-token prompts).

    Prompt k starts at a seeded random offset of held-out document k mod D, so the same
    (n, prompt_len, seed) gives the same prompts on every machine with the same Python.
    """
    docs = [tokenizer(t, add_special_tokens=False).input_ids for t in load_corpus(domain, "heldout").texts]
    docs = [d for d in docs if len(d) >= prompt_len]
    if not docs:
        raise ValueError(f"no held-out {domain} document has {prompt_len} tokens")
    generator = torch.Generator().manual_seed(seed)
    prompts = []
    for k in range(n):
        doc = docs[k % len(docs)]
        start = int(torch.randint(0, len(doc) - prompt_len + 1, (1,), generator=generator))
        prompts.append(torch.tensor(doc[start : start + prompt_len], dtype=torch.long))
    return prompts
