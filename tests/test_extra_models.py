"""Opt-in models assembled from PyPI parts: ordering, hash check, clear errors (fake parts, no download)."""

import hashlib

import pytest

from pass_ref import assets as extra_models
from pass_ref.assets import ExtraModel, extra_model_path


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    chunks = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    for i, chunk in enumerate(chunks, 1):
        pkg = tmp_path / "site" / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('part packages must never be imported')\n")
        (pkg / "data" / f"part0{i}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)

    def register(sha):
        model = ExtraModel("fake.gguf", tuple((f"fakepart{i}", f"data/part0{i}.bin") for i in (1, 2, 3)), sha, len(whole), "fakepart1..3")
        monkeypatch.setitem(extra_models.EXTRA_MODELS, "fake", model)

    return whole, register


def test_assembles_in_order_and_checks_the_hash(fake_parts, tmp_path):
    whole, register = fake_parts
    register(hashlib.sha256(whole).hexdigest())
    path = extra_model_path("fake", cache=tmp_path / "cache")
    assert path.read_bytes() == whole  # parts 1, 2, 3 in order; their __init__ never ran
    assert extra_model_path("fake", cache=tmp_path / "cache") == path  # second call reuses the file


def test_wrong_hash_is_refused_and_nothing_is_left(fake_parts, tmp_path):
    _, register = fake_parts
    register("0" * 64)
    with pytest.raises(ValueError, match="refusing"):
        extra_model_path("fake", cache=tmp_path / "cache")
    assert not list((tmp_path / "cache" / "extra").iterdir())


def test_missing_parts_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(extra_models.EXTRA_MODELS, "absent", ExtraModel("x.gguf", (("no_such_part_pkg", "data/x.bin"),), "0" * 64, 1, "x"))
    with pytest.raises(FileNotFoundError, match="make models-extra"):
        extra_model_path("absent", cache=tmp_path)
    with pytest.raises(ValueError, match="unknown extra model"):
        extra_model_path("qwen-9000", cache=tmp_path)
