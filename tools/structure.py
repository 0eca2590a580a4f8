"""The package's structure, measured from its source: import circles, layers, and what a reader must open.

    python tools/structure.py            # the report (make structure)
    python tools/structure.py --json     # the same as JSON
    python tools/structure.py --write-docs   # refresh the reading path in docs/architecture.md

Imports are read with ``ast`` from every ``pass_ref`` file, those inside functions too (a
deferred import is still a file the reader must open). Measured:

- circles: groups of modules that import each other, directly or through others;
- layers: core modules (everything but ``training/``, ``experiments/``, ``course/`` and the
  CLI) never import those higher layers, and hold no clock (no ``time`` import);
- the closure of ``pass_generate``: every file reachable by imports from the module that
  defines it, with its line count (docstrings and comments included). A subpackage's
  ``__init__.py`` counts when one of its modules is imported (Python runs it); the
  package's own ``pass_ref/__init__.py`` does not (it is the front door that re-exports
  everything, run whatever one imports);
- the loop: the length of ``decode`` and any type test (``isinstance``, ``getattr``,
  ``hasattr``, ``type``) inside it.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pass_ref"
# The core in the order a reader learns it: Algorithm 1 first, then what is beyond the paper, then the front ends.
READING_ORDER = [
    ("sampling", "logits -> processed probabilities -> token, with an explicit generator"),
    ("verify", "the accept / reject / residual rule: the only place that decides"),
    ("layer_inputs", "vectors added to each decoder layer's input (deep look-ahead)"),
    ("cache", "CachedModel: the KV invariant (forward, rollback, sync); ExtraInputs"),
    ("outputs", "GenerationOutput, GenerationStats, IterationRecord: results are data"),
    ("checks", "every argument check, with one set of messages"),
    ("config", "DecodingConfig: the sampling and stopping options, one object"),
    ("lookahead", "LookaheadEmbeddings: the L vectors, deep look-ahead vectors, files"),
    ("drafters.base", "Draft, DraftState, the Drafter hooks; NoDrafter"),
    ("drafters.lookahead", "PaSS's drafting call (Algorithm 1, step 1): LookaheadDrafter"),
    ("loop", "decode: the one loop (Algorithm 1, any drafter)"),
    ("generate", "pass_generate, autoregressive_generate"),
    ("drafters.fused", "one-call PaSS: look-ahead groups, their mask and positions"),
    ("drafters.lookup", "prompt lookup and the hybrid"),
    ("drafters.draft_model", "classic speculative sampling with a draft model"),
    ("baselines", "prompt_lookup_generate, speculative_generate"),
    ("methods", "the one method table: METHODS, register, make_drafter"),
    ("trained", "load_lookahead: the shipped sets, found by model"),
    ("assets", "offline model files: the default GGUF, opt-in models"),
    ("models", "load_model, tiny_llama, truncated_draft_model"),
    ("static", "static_model: the compiled static-cache path, CachedModel's verbs on fixed-size calls"),
    ("attention", "grouped-query attention reading each key/value head once (the static path's)"),
    ("hf", "pass_decoding: the loop inside model.generate"),
    ("viz", "highlighting and one-line summaries"),
]
HIGHER = ("pass_ref.training", "pass_ref.experiments", "pass_ref.course", "pass_ref.serving", "pass_ref.cli", "pass_ref.__main__")
TYPE_TESTS = {"isinstance", "getattr", "hasattr", "type"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path, known: dict[str, Path], *, packages: bool = True) -> set[str]:
    """The pass_ref modules ``name`` imports; with ``packages``, also the package ``__init__`` files Python runs
    on the way to them (they count for what a reader opens, not as dependencies between modules)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("pass_ref."):
                found.add(target)
            while packages and target.startswith("pass_ref."):  # the package __init__ files Python runs on the way
                if target in known and not name.startswith(target + "."):
                    found.add(target)
                target = target.rpartition(".")[0]
    found.discard(name)
    return found


def graph(*, packages: bool = False) -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known, packages=packages) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def closure(edges: dict[str, set[str]], start: str) -> list[str]:
    seen, todo = {start}, [start]
    while todo:
        for w in edges[todo.pop()]:
            if w not in seen and w != "pass_ref":
                seen.add(w)
                todo.append(w)
    return sorted(seen)


def lines(name: str) -> int:
    return len(modules()[name].read_text(encoding="utf-8").splitlines())


def is_core(name: str) -> bool:
    return not any(name == h or name.startswith(h + ".") for h in HIGHER)


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, targets in edges.items():
        if is_core(name):
            bad += [f"{name} imports {t}" for t in sorted(targets) if not is_core(t)]
    return bad


def clocks_in_core() -> list[str]:
    found = []
    for name, path in modules().items():
        if not is_core(name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = [node.module] if isinstance(node, ast.ImportFrom) else []
            if "time" in names:
                found.append(name)
    return found


def loop_report() -> dict:
    tree = ast.parse((PACKAGE / "loop.py").read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "decode")
    tests = sorted(
        {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in TYPE_TESTS}
    )
    return {"function": "pass_ref.loop.decode", "lines": fn.end_lineno - fn.lineno + 1, "type_tests": tests}


def report() -> dict:
    edges = graph()
    start = "pass_ref.generate"
    members = closure(graph(packages=True), start)
    return {
        "circles": circles(edges),
        "layer_violations": layer_violations(edges),
        "clocks_in_core": clocks_in_core(),
        "closure": {
            "of": "pass_ref.generate.pass_generate",
            "modules": {m: lines(m) for m in members},
            "lines": sum(lines(m) for m in members),
        },
        "loop": loop_report(),
    }


def reading_table() -> str:
    """The markdown table of ``docs/architecture.md``'s reading path (file, lines, what it holds)."""
    rows = ["| # | file | lines | what it holds |", "|---|---|---|---|"]
    for i, (name, what) in enumerate(READING_ORDER, 1):
        rel = modules()[f"pass_ref.{name}"].relative_to(ROOT)
        rows.append(f"| {i} | `{rel}` | {lines(f'pass_ref.{name}')} | {what} |")
    return "\n".join(rows)


def write_reading_table(doc: Path = ROOT / "docs" / "architecture.md") -> None:
    """Replace the reading-path table in ``docs/architecture.md`` with the current one."""
    text = doc.read_text(encoding="utf-8")
    start = text.index("| # | file | lines | what it holds |")
    end = text.index("\n\n", start)
    doc.write_text(text[:start] + reading_table() + text[end:], encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--reading-table", action="store_true", help="the reading path of docs/architecture.md")
    parser.add_argument("--write-docs", action="store_true", help="write that table into docs/architecture.md")
    args = parser.parse_args()
    if args.reading_table or args.write_docs:
        if args.write_docs:
            write_reading_table()
        print(reading_table())
        return 0
    r = report()
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    c = r["closure"]
    print(f"import closure of {c['of']}: {len(c['modules'])} modules, {c['lines']} lines")
    for m, n in c["modules"].items():
        print(f"  {n:5d}  {m}")
    print(f"the loop ({r['loop']['function']}): {r['loop']['lines']} lines, type tests: {r['loop']['type_tests'] or 'none'}")
    print(f"import circles in pass_ref: {r['circles'] or 'none'}")
    print(f"core modules importing training/experiments/course/cli: {r['layer_violations'] or 'none'}")
    print(f"core modules importing time: {r['clocks_in_core'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
