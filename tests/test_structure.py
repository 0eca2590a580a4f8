"""The package's shape, measured from its source (tools/structure.py): no import circles, layers that only point
down, no clock in the core, one short loop that never tests its drafter's type, and a reading path that is current."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("structure", ROOT / "tools" / "structure.py")
structure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(structure)


def test_no_import_circles():
    assert structure.circles(structure.graph()) == []


def test_the_tool_finds_a_circle_when_there_is_one():
    """Negative control: a made-up graph with a cycle is reported."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert structure.circles(edges) == [["a", "b", "c"]]


def test_core_never_imports_the_higher_layers():
    assert structure.layer_violations(structure.graph()) == []
    assert not structure.is_core("pass_ref.experiments.bench") and structure.is_core("pass_ref.loop")


def test_core_holds_no_clock():
    assert structure.clocks_in_core() == []


def test_the_loop_is_short_and_never_asks_what_its_drafter_is():
    loop = structure.loop_report()
    assert loop["lines"] <= 70 and loop["type_tests"] == []


def test_pass_generate_closure_is_the_core_only():
    """What a reader opens to follow pass_generate: core modules, none of training/experiments/course/cli."""
    closure = structure.report()["closure"]["modules"]
    assert "pass_ref.loop" in closure and "pass_ref.drafters.lookahead" in closure
    assert all(structure.is_core(m) for m in closure)
    assert "pass_ref.methods" not in closure and "pass_ref.models" not in closure


@pytest.mark.parametrize("name", [m for m in structure.modules() if structure.is_core(m)])
def test_every_core_module_is_on_the_reading_path(name):
    listed = {f"pass_ref.{n}" for n, _ in structure.READING_ORDER}
    assert name in listed or name in ("pass_ref", "pass_ref.drafters", "pass_ref.hub.custom_generate.generate")


def test_the_reading_path_in_the_docs_is_current():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert structure.reading_table() in doc, "run: python tools/structure.py --write-docs"


def test_import_pass_ref_loads_only_the_core():
    """``import pass_ref`` exports the core; training, experiments and course are imported by name."""
    import subprocess
    import sys

    code = "import sys, pass_ref; print(sorted(m for m in sys.modules if m.startswith('pass_ref.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pass_ref.loop" in loaded
    assert all(layer not in loaded for layer in ("pass_ref.training", "pass_ref.experiments", "pass_ref.course"))
