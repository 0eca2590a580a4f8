"""Execute notebooks in place and normalise their metadata (``make notebooks``).

    python tools/execute_notebooks.py notebooks/00_quickstart.ipynb [...]

Runs each notebook top to bottom with the current Python's kernel (working directory:
the notebook's folder), then keeps diffs quiet: a fixed kernelspec and language_info,
no execution timestamps. Committed outputs are what nbval compares in ``make test``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}


def normalise(nb: nbformat.NotebookNode) -> None:
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)


def execute(path: Path, timeout: int = 1800) -> None:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    normalise(nb)
    nbformat.write(nb, path)
    print(f"{path}: executed in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        execute(Path(name))
