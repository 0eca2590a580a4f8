"""`make handout` gives students a course that works without the solutions."""

import os
import subprocess
import sys
import tarfile

import pytest

from pass_ref.experiments.results_doc import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("handout")]  # one worker builds dist/ at a time


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    subprocess.run(["make", "-s", "handout"], cwd=ROOT, check=True, capture_output=True)
    folder = tmp_path_factory.mktemp("handout")
    with tarfile.open(ROOT / "dist" / "pass-ref-handout.tar.gz") as tar:
        tar.extractall(folder, filter="data")
    return folder


def test_handout_has_the_course_without_solutions(unpacked):
    assert not (unpacked / "notebooks" / "solutions").exists()
    for name in ("requirements-lab.txt", "results/gpu/gpu_check.json", "docs/paper.md", "notebooks/07_assignments.ipynb"):
        assert (unpacked / name).exists(), name
    # `make lab` resolves there (dry run: the rule and its prerequisites exist).
    dry = subprocess.run(["make", "-n", "lab"], cwd=unpacked, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr


def test_handout_notebooks_run_under_nbval(unpacked):
    """Notebooks 00 and 07 pass nbval from the unpacked folder, importing the unpacked package."""
    env = dict(os.environ, CI="true", PYTHONPATH=str(unpacked))
    notebooks = [str(unpacked / "notebooks" / n) for n in ("00_quickstart.ipynb", "07_assignments.ipynb")]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(unpacked / "notebooks" / "sanitize.cfg"), "--rootdir", str(unpacked), *notebooks],
        cwd=unpacked, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
