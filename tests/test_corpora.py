"""Offline corpora: fixed disjoint splits, windowing, and clear errors for unusable input."""

import pytest

from pass_ref.training.corpora import function_windows, is_heldout, load_corpus, tokenize_windows


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


SOURCE = (
    "import math\n\n\n"
    "def area(r):\n"
    '    """The area of a circle\n    of radius r."""\n'
    "    return math.pi * r * r\n\n\n"
    "def only_doc():\n"
    '    """Nothing after me."""\n\n\n'
    "def undocumented(x):\n"
    "    return x + 1\n\n\n"
    "class Shape:\n"
    "    def corners(self):\n"
    '        """How many corners."""\n'
    "        return 0\n"
    + "# filler line\n" * 20
)


def test_function_windows_end_their_prompt_where_a_documented_body_starts():
    """Each window's prompt ends right after a docstring's line, as a HumanEval prompt does; the
    body follows. Functions with nothing after the docstring, or none, give no window."""
    windows = function_windows(CharTokenizer(), [SOURCE], 60, 24)
    assert windows.shape == (2, 60)  # area and Shape.corners
    for row, (doc_end, body) in zip(windows.tolist(), [('r."""\n', "    return math.pi"), ('corners."""\n', "        return 0")]):
        end = SOURCE.index(doc_end) + len(doc_end)
        assert row[:24] == [ord(c) % 31 for c in SOURCE[end - 24 : end]]
        assert row[24 : 24 + len(body)] == [ord(c) % 31 for c in body]
    assert function_windows(CharTokenizer(), [SOURCE], 60, 24, max_windows=1).shape == (1, 60)
    assert function_windows(CharTokenizer(), [SOURCE, "def broken(:\n"], 60, 24).shape == (2, 60)  # unparsable: skipped


@pytest.mark.parametrize("corpus, seq_len, prompt_len", [
    (["def f():\n    return 1\n" * 40], 20, 8),  # no docstring anywhere
    ([SOURCE], 2000, 24),  # no function leaves a whole window after its docstring
    ([SOURCE], 20, 20),  # the prompt must leave room for a continuation
])
def test_function_windows_bad_input(corpus, seq_len, prompt_len):
    with pytest.raises(ValueError):
        function_windows(CharTokenizer(), corpus, seq_len, prompt_len)
