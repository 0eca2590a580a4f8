"""Offline corpora: fixed disjoint splits, windowing, and clear errors for unusable input."""

import pytest

from pass_ref.training.corpora import is_heldout, load_corpus, tokenize_windows


class CharTokenizer:
    """A stand-in tokenizer: one id per character (mod 31), EOS = 31. Enough for windowing."""

    eos_token_id = 31

    def __call__(self, text, add_special_tokens=False):
        class Encoded:
            input_ids = [ord(c) % 31 for c in text]

        return Encoded()


@pytest.mark.parametrize("domain", ["code", "text"])
def test_splits_are_disjoint_fixed_and_nonempty(domain):
    train, heldout = load_corpus(domain, "train"), load_corpus(domain, "heldout")
    assert len(train) > 5 * len(heldout) > 0
    assert not set(train.names) & set(heldout.names)
    assert all(is_heldout(n) for n in heldout.names) and not any(is_heldout(n) for n in train.names)
    assert load_corpus(domain, "heldout").names == heldout.names  # same every time
    assert train.describe()["documents"] == len(train)


def test_code_corpus_is_python_and_text_is_prose():
    code = load_corpus("code", "heldout")
    assert all(n.endswith(".py") and not any(p.startswith("test") for p in n.split("/")) for n in code.names)
    assert any("def " in t for t in code.texts)
    text = load_corpus("text", "train")
    assert sum(t.count(" the ") for t in text.texts) > 1000


def test_windows_join_documents_with_eos():
    windows = tokenize_windows(CharTokenizer(), ["abc", "defg"], 3)
    assert windows.shape == (3, 3)  # 3 + 1 + 4 + 1 = 9 ids
    assert windows.flatten().tolist()[3] == 31
    assert tokenize_windows(CharTokenizer(), ["abcdefgh"] * 10, 4, max_windows=2).shape == (2, 4)


@pytest.mark.parametrize(
    "corpus, seq_len, error",
    [
        ([], 8, ValueError),  # empty corpus
        (["   ", ""], 8, ValueError),  # only blank documents
        (["ab"], 8, ValueError),  # shorter than one window
        (["abcdef"], 1, ValueError),  # seq_len too small
        (42, 8, TypeError),  # not text
    ],
)
def test_bad_corpus(corpus, seq_len, error):
    with pytest.raises(error):
        tokenize_windows(CharTokenizer(), corpus, seq_len)


def test_bad_domain_or_split():
    with pytest.raises(ValueError, match="domain"):
        load_corpus("wikipedia")
    with pytest.raises(ValueError, match="split"):
        load_corpus("code", "test")
