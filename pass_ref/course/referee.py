"""What ``python -m pass_ref grade`` runs inside a submission's kernel, after the student's last cell.

A printed ``PASS`` proves nothing: any cell can print it. So the grading CLI ignores what the
notebook printed. Once the student's cells have run, it executes one more cell of its own, which
holds a fresh random nonce and the path of a result file. That cell reloads the graders (undoing
any change a student cell made to them) and calls ``referee``, which

1. finds each assignment's function by the name the handout gives it (``ANSWERS``);
2. refuses a function that *is* the package's answer (``residual = pass_ref.residual_distribution``);
3. runs every grader on cases the notebook never shows (``assignments.hidden_cases``), and while
   the student's function runs, replaces the package's own answers to that assignment, wherever
   they are bound (the package's modules, the function's globals), by a function that raises
   ``Delegated``: a submission that calls them fails with a message naming what it called;
4. writes ``{"nonce": ..., "results": {...}}`` to the result file, the only thing the CLI reads.

This stops copying the answer from the package and printing a score, not a determined attacker:
a submission is code, run with the grader's rights, and could patch anything in its own process.
Run untrusted submissions in a container or as a throwaway user (``notebooks/README.md``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import sys
from pathlib import Path
from typing import Callable

from . import assignments

HIDDEN_OFFSET = 7919  # the graders' seeds move by this much: fixed, so a grade is reproducible
THEORY = tuple(f"pass_ref.course.theory:{name}" for name in (
    "expected_accepted", "pass_tokens_per_iteration", "pass_tokens_per_call", "tokens_per_iteration_from_acceptance",
    "pass_speedup", "speculative_speedup", "simulate_pass_tokens_per_iteration", "implied_acceptance"))
VERIFY = ("pass_ref.verify:residual_distribution", "pass_ref.verify:acceptance_probs", "pass_ref.verify:verify_drafts")

# assignment -> (the function the handout asks for, the package's answers it must not call)
ANSWERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "residual": ("residual", VERIFY),
    "accept_block": ("accept_block", VERIFY),
    "tokens_per_call": ("tokens_per_call", THEORY),
    "simulate": ("simulate", THEORY),
    "predict_speedup": ("predict_speedup", THEORY + ("pass_ref.experiments.latency:predicted_pass_speedup",)),
    "broken_verify": ("broken_verify", ()),  # may reuse the real rule for what it does not break
    "drafting_call": ("drafting_call", ("pass_ref.drafters.lookahead:drafting_call", "pass_ref.drafters.lookahead:lookahead_logits",
                                        "pass_ref.cache:CachedModel")),
    "targets": ("targets", ("pass_ref.training.train:lookahead_targets",)),
    "block_mask": ("block_mask", ("pass_ref.training.train:block_attention_mask",)),
    "compare": ("compare", THEORY),
    "predict_fused": ("predict_fused", ("pass_ref.experiments.latency:predicted_fused_speedup",
                                        "pass_ref.experiments.latency:accepted_count_law", "pass_ref.experiments.latency:best_groups")),
    "verify": ("verify", VERIFY),
    "implied_acceptance": ("implied", THEORY),
    "chi_square_power": ("samples_needed", ("pass_ref.course.exactness:samples_needed", "pass_ref.course.exactness:chi_square_power")),
    "training_loop": ("train", ("pass_ref.training.train:train_lookahead", "pass_ref.training.train:lookahead_loss",
                                "pass_ref.course.assignments:heldout_lookahead_loss")),
}


class Delegated(Exception):
    """A student function called the package's own answer to its assignment."""


def references(assignment: str) -> dict[int, str]:
    """id -> dotted name of every package object the assignment's function must not call."""
    found = {}
    for spec in ANSWERS[assignment][1]:
        module, attr = spec.split(":")
        found[id(getattr(importlib.import_module(module), attr))] = f"{module}.{attr}"
    return found


def _function(fn):
    """The plain function behind a partial or a bound method."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__func__", fn)


def _globals_of(fn) -> list[dict]:
    fn = _function(fn)
    return [fn.__globals__] if hasattr(fn, "__globals__") else []


def _captured(fn) -> list:
    """Objects a function carries with it: default arguments and closure cells."""
    fn = _function(fn)
    values = list(getattr(fn, "__defaults__", None) or ()) + list((getattr(fn, "__kwdefaults__", None) or {}).values())
    for cell in getattr(fn, "__closure__", None) or ():
        with contextlib.suppress(ValueError):
            values.append(cell.cell_contents)
    return values


def _refusal(function: str, reference: str) -> Callable:
    def refuse(*args, **kwargs):
        raise Delegated(f"{function} calls the package's {reference}: write it yourself")

    return refuse


@contextlib.contextmanager
def blocked(assignment: str, fn: Callable):
    """While inside: the package's answers to ``assignment`` raise ``Delegated`` wherever they are bound."""
    refs = references(assignment)
    ours = [m for name, m in list(sys.modules.items()) if m is not None and (name == "pass_ref" or name.startswith("pass_ref."))]
    patches = []
    for namespace in [vars(m) for m in ours] + _globals_of(fn):
        for key, value in list(namespace.items()):
            if id(value) in refs:
                patches.append((namespace, key, value))
                namespace[key] = _refusal(ANSWERS[assignment][0], refs[id(value)])
    try:
        yield
    finally:
        for namespace, key, value in reversed(patches):
            namespace[key] = value


def guarded(assignment: str, fn: Callable) -> Callable:
    """``fn`` run inside ``blocked``; refused outright when it is, or carries, one of the package's answers."""
    refs = references(assignment)
    name = ANSWERS[assignment][0]
    carried = [refs[id(v)] for v in [fn, *_captured(fn)] if id(v) in refs]
    module = getattr(fn, "__module__", None) or ""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if carried:
            raise Delegated(f"{name} is (or carries) the package's {carried[0]}: write it yourself")
        if module == "pass_ref" or module.startswith("pass_ref."):
            raise Delegated(f"{name} is the package's {module}.{getattr(fn, '__qualname__', fn)}: write it yourself")
        with blocked(assignment, fn):
            return fn(*args, **kwargs)

    return run


def referee(namespace: dict, *, nonce: str, out: str | Path, offset: int = HIDDEN_OFFSET) -> dict:
    """Grade every assignment from the functions in ``namespace`` (the kernel's globals) and write the result file."""
    results = {}
    with assignments.hidden_cases(offset):
        for key, (grader, _, _) in assignments.ASSIGNMENTS.items():
            name = ANSWERS[key][0]
            fn = namespace.get(name)
            if fn is None or not callable(fn):
                results[key] = {"status": assignments.NOT_IMPLEMENTED, "message": f"no function named {name}"}
                continue
            grade = grader(guarded(key, fn), verbose=False)
            results[key] = {"status": grade.status, "message": grade.message, "title": grade.assignment}
    Path(out).write_text(json.dumps({"nonce": nonce, "results": results}), encoding="utf-8")
    return results


def grading_cell(nonce: str, out: str | Path) -> str:
    """The source of the cell the CLI appends to a submission: reload the graders, run ``referee``."""
    return "\n".join([
        "import importlib as _importlib, sys as _sys",
        "for _name in ('pass_ref.course.assignments', 'pass_ref.course.referee'):",
        "    if _name in _sys.modules:",
        "        _importlib.reload(_sys.modules[_name])",
        "_referee = _importlib.import_module('pass_ref.course.referee')",
        f"_referee.referee(globals(), nonce={nonce!r}, out={str(out)!r})",
    ])
