"""Grade submitted assignment notebooks headless (``python -m pass_ref grade PATH``).

Each notebook runs top to bottom in a fresh kernel with a time limit; the autograder
lines it prints (``PASS``, ``FAIL``, ``NOT IMPLEMENTED``, one per graded call, see
``pass_ref.course.assignments``) are collected per assignment, the last one winning.
A notebook that times out or cannot start gets a row saying so, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .assignments import FAIL, NOT_IMPLEMENTED, PASS

LINE = re.compile(rf"^({PASS}|{FAIL}|{NOT_IMPLEMENTED})\s+(.+?): ", re.M)


@dataclass
class Submission:
    path: Path
    results: dict[str, str] = field(default_factory=dict)  # assignment -> status
    error: str | None = None

    @property
    def score(self) -> int:
        return sum(status == PASS for status in self.results.values())


def grade_notebook(path: str | Path, *, timeout: int = 600) -> Submission:
    """Run one notebook (in a copy, in its folder) and collect its autograder lines."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    submission = Submission(path)
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    except (CellTimeoutError, TimeoutError):
        submission.error = f"timed out after {timeout} s in one cell"
        return submission
    except (CellExecutionError, DeadKernelError, OSError, ValueError) as error:
        submission.error = f"could not run: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
        return submission
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            for status, name in LINE.findall(text):
                submission.results[name] = status
    return submission


def grade_path(path: str | Path, *, timeout: int = 600) -> list[Submission]:
    """One notebook, or every ``*.ipynb`` in a folder (sorted)."""
    path = Path(path)
    if path.is_dir():
        notebooks = sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
        if not notebooks:
            raise FileNotFoundError(f"no notebooks in {path}")
    elif path.suffix == ".ipynb" and path.is_file():
        notebooks = [path]
    else:
        raise FileNotFoundError(f"{path} is neither a notebook nor a folder of notebooks")
    return [grade_notebook(p, timeout=timeout) for p in notebooks]


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
