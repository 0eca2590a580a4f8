"""Committed notebooks are small, clean and follow the course conventions (nbval runs them)."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").rglob("*.ipynb"))
LOCAL_PATH = re.compile(r"(/root/|/home/|/work/|/tmp/|[A-Z]:\\\\Users)")


def test_there_are_notebooks():
    expected = {
        "00_quickstart.ipynb", "01_speculative_sampling.ipynb", "02_lookahead_drafting.ipynb", "03_correctness.ipynb",
        "04_training.ipynb", "06_speed.ipynb", "07_assignments.ipynb", "07_assignments_solutions.ipynb", "05_beyond_the_paper.ipynb",
    }
    assert expected <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    """Normalised kernelspec, executed in order, no errors, no local paths, no wildcard imports, small."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert path.stat().st_size < 125_000, "a lesson, not a replay: keep each notebook under ~120 KB with its outputs"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "import pass_ref" in code[0].source and 'SMOKE = "CI" in os.environ' in code[0].source
    counts = [c.execution_count for c in code]
    assert all(n is not None for n in counts) and counts == sorted(counts), "run it top to bottom"
    for cell in code:
        assert not re.search(r"^\s*from\s+\S+\s+import\s+\*", cell.source, re.M)
        for output in cell.outputs:
            assert output.output_type != "error", f"error output in {path.name}"
            text = str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
            assert not LOCAL_PATH.search(text), f"local path in an output of {path.name}: {text[:200]}"
