"""The shape of the package: sub-packages by stage of the data flow, each importing only the
stages below it (docs/architecture.md), no import cycle (function-level imports included) and no
module over 400 lines, so a change that breaks any of these fails here rather than in review."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "copypaste_ser"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (``from . import x`` counts as x)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + [node.module]) if node.module else ".".join(base)
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                found = subs if len(subs) == len(node.names) else [target, *subs]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            graph[mod] |= {t for t in found if t in mods and t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert graph["copypaste_ser.training.loop"], "the import graph came out empty"
    assert cycles(graph) == []


#: What each sub-package may import (function-level imports included); the root helpers
#: (errors, validation, metrics) and files/ are below every stage. docs/architecture.md draws it.
SHARED = {"errors", "validation", "metrics", "files"}
MAY_IMPORT = {
    "files": {"errors"},
    "data": SHARED,
    "features": SHARED | {"data"},
    "augment": SHARED | {"data", "features"},
    "models": SHARED | {"data", "features", "augment"},
    "training": SHARED | {"data", "features", "augment", "models"},
    "evaluation": SHARED | {"data", "features", "augment", "models", "training"},
    "experiments": SHARED | {"data", "features", "augment", "models", "training", "evaluation", "inference"},
    "inference": SHARED | {"data", "features", "models"},
    "interop": SHARED | {"data", "augment"},
}
ROOT_MODULES = {"__init__", "__main__", "errors", "validation", "metrics"}


def stage(module: str) -> str:
    """copypaste_ser.training.loop -> training; root modules are their own stage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        allowed = MAY_IMPORT.get(stage(mod))
        if allowed is None:  # root helpers, cli: checked elsewhere / may import everything
            continue
        bad += [f"{mod} -> {d}" for d in sorted(deps) if stage(d) not in allowed | {stage(mod)}]
    return bad


def test_the_direction_checker_sees_an_upward_import():
    graph = {"copypaste_ser.data.audio": {"copypaste_ser.training.loop", "copypaste_ser.errors"},
             "copypaste_ser.training.loop": {"copypaste_ser.data.audio"}}
    assert direction_violations(graph) == ["copypaste_ser.data.audio -> copypaste_ser.training.loop"]


def test_each_stage_imports_only_the_stages_below_it():
    graph = import_graph()
    assert direction_violations(graph) == []
    root_helpers = {m for m in graph if m.count(".") == 1 and stage(m) in SHARED - {"files"}}
    assert all(not deps - root_helpers - {d for d in deps if stage(d) == "files"}
               for m, deps in graph.items() if m in root_helpers), "a root helper imports a stage"


def test_the_package_root_holds_only_sub_packages_and_a_few_shared_helpers():
    root = {p.stem for p in PACKAGE.glob("*.py")}
    assert root <= ROOT_MODULES, sorted(root - ROOT_MODULES)
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == \
        set(MAY_IMPORT) - {"files"} | {"files", "cli"}


def test_shipped_configs_are_recipes_in_one_folder_per_corpus():
    """The wheel ships configs/: recipes a user starts from, by corpus; dev rounds and one-off
    configs live beside the results they made (docs/results/), not in the wheel."""
    import yaml

    configs = PACKAGE.parents[1] / "configs"
    assert sorted(configs.glob("*.yaml")) == []  # none loose at the top
    for path in configs.rglob("*.yaml"):
        if path.parent.name != "train":  # train/: `train --config` files, no corpus of their own
            data = Path(yaml.safe_load(path.read_text())["data"]).name
            assert data.startswith(path.parent.name), f"{path} reads {data}"
    assert not any("dev" in p.stem.split("-") or p.parent.name == "dev" for p in configs.rglob("*.yaml"))


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_readme_is_a_front_door_and_its_links_resolve():
    root = PACKAGE.parents[1]
    readme = (root / "README.md").read_text()
    assert len(readme.encode()) <= 10 * 1024, "README.md over 10 KB: move detail to docs/"
    import re
    for target in re.findall(r"\]\(([^)#]+)", readme):
        if "://" not in target:
            assert (root / target).exists(), target


def test_importing_the_package_leaves_the_callers_environment_alone():
    import subprocess
    import sys
    code = "import os, copypaste_ser, copypaste_ser.augment; print(os.environ.get('MKL_CBWR'))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "MKL_CBWR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "None", out.stderr


def test_every_import_the_docs_show_works():
    """`from copypaste_ser.x import y` lines in README and docs/ (moved modules break them silently)."""
    import importlib
    import re
    root = PACKAGE.parents[1]
    found = 0
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for module, names in re.findall(r"^\s*from (copypaste_ser[\w.]*) import ([\w, ]+)", doc.read_text(), re.M):
            mod = importlib.import_module(module)
            for name in (n.strip() for n in names.split(",")):
                assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), f"{doc.name}: {module}.{name}"
            found += 1
    assert found >= 3


def test_the_api_reference_builds_without_warnings(tmp_path):
    import shutil
    import subprocess
    import sys
    pdoc = shutil.which("pdoc", path=str(Path(sys.executable).parent))
    if pdoc is None:
        import pytest
        pytest.skip("pdoc is not installed (make install brings it)")
    done = subprocess.run([pdoc, "copypaste_ser", "-o", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr[-2000:]
    assert (tmp_path / "copypaste_ser" / "training" / "loop.html").is_file()
