"""Grade submitted assignment notebooks headless (``python -m pass_ref grade PATH``).

Each notebook runs top to bottom in a fresh kernel with a time limit (its errors do not stop
it). Then the grader runs one cell of its own in that kernel (``referee.grading_cell``): it
calls every autograder itself, on hidden cases, with the package's answers blocked while the
student's functions run, and writes the results with a fresh nonce to a file only the grader
names. What the notebook printed is never read. A notebook that times out, kills its kernel
or leaves no result file gets a row saying so, never a crash. See ``referee`` for what this
does and does not protect against.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .assignments import ASSIGNMENTS, FAIL, NOT_IMPLEMENTED, PASS
from .referee import grading_cell


@dataclass
class Submission:
    path: Path
    results: dict[str, str] = field(default_factory=dict)  # assignment title -> status
    messages: dict[str, str] = field(default_factory=dict)  # assignment title -> the grader's message
    error: str | None = None

    @property
    def score(self) -> int:
        return sum(status == PASS for status in self.results.values())


def grade_notebook(path: str | Path, *, timeout: int = 600, threads: int | None = None) -> Submission:
    """Run one notebook (a copy, in its folder), then the grader's own cell; read its result file.

    ``threads`` caps the kernel's CPU threads (``OMP_NUM_THREADS``); None keeps this process's setting.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path)
    submission = Submission(path)
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="pass-ref-grade-") as folder:
        out = Path(folder) / f"{nonce}.json"
        try:
            nb = nbformat.read(path, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(grading_cell(nonce, out)))
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": str(path.parent)}})
            env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
            client.execute(**({"env": env} if env else {}))
        except (CellTimeoutError, TimeoutError):
            submission.error = f"timed out after {timeout} s in one cell"
            return submission
        except (DeadKernelError, OSError, ValueError, RuntimeError) as error:
            submission.error = f"could not run: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
            return submission
        try:
            data = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            last = "".join(o.get("ename", "") + ": " + o.get("evalue", "") for o in nb.cells[-1].get("outputs", [])
                           if o.get("output_type") == "error")
            submission.error = "the grader's cell left no result" + (f" ({last[:120]})" if last else "")
            return submission
    if data.get("nonce") != nonce:
        submission.error = "the result file does not carry this run's nonce: not graded"
        return submission
    for key in ASSIGNMENTS:
        result = data["results"].get(key, {"status": NOT_IMPLEMENTED, "message": "not graded"})
        title = result.get("title", key)
        submission.results[title], submission.messages[title] = result["status"], result["message"]
    return submission


def grade_path(path: str | Path, *, timeout: int = 600, jobs: int = 1) -> list[Submission]:
    """One notebook, or every ``*.ipynb`` in a folder (sorted); ``jobs`` notebooks at a time, each in its own kernel.

    With several jobs each kernel gets an equal share of the CPUs: kernels that each start one
    PyTorch thread per core oversubscribe the machine and run several times slower (measured on
    2 cores: 4 notebooks at 2 jobs took 196 s with shared threads, 49 s with one thread each).
    An ``OMP_NUM_THREADS`` already set is left alone.
    """
    path = Path(path)
    if path.is_dir():
        notebooks = sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
        if not notebooks:
            raise FileNotFoundError(f"no notebooks in {path}")
    elif path.suffix == ".ipynb" and path.is_file():
        notebooks = [path]
    else:
        raise FileNotFoundError(f"{path} is neither a notebook nor a folder of notebooks")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    threads = None if jobs == 1 or "OMP_NUM_THREADS" in os.environ else max(1, _cpus() // min(jobs, len(notebooks)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda p: grade_notebook(p, timeout=timeout, threads=threads), notebooks))


def _cpus() -> int:
    """CPUs this process may run on (its affinity where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def format_scores(submissions: list[Submission]) -> str:
    """A markdown table: one row per notebook, one column per assignment, and the score."""
    names = []
    for s in submissions:
        names += [n for n in s.results if n not in names]
    short = {PASS: "pass", FAIL: "FAIL", NOT_IMPLEMENTED: "–"}
    lines = ["| notebook | " + " | ".join(names) + " | score |", "|---|" + "---|" * (len(names) + 1)]
    for s in submissions:
        if s.error:
            lines.append(f"| {s.path.name} | " + " | ".join("?" for _ in names) + f" | {s.error} |")
        else:
            lines.append(f"| {s.path.name} | " + " | ".join(short[s.results.get(n, NOT_IMPLEMENTED)] for n in names)
                         + f" | {s.score} / {len(names)} |")
    return "\n".join(lines)


def format_failures(submissions: list[Submission]) -> str:
    """What each failed check said, per notebook (for the teacher's feedback)."""
    lines = [f"- {s.path.name}, {title}: {s.messages[title]}" for s in submissions for title, status in s.results.items()
             if status == FAIL]
    return "\n".join(lines)
