"""The package's shape: imports run one way through the stages, modules and functions stay small
enough to read, and importing any module changes nothing in the environment."""

import ast
import json
import os
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "qa"
# Each part may import its own modules and those of lower layers, never a higher one.
LAYERS = {"types": 0, "errors": 0, "config": 0, "text": 0, "sentences": 0, "__init__": 0, "ingest": 1, "models": 2,
          "tables": 1, "index": 3, "answer": 4, "pipeline": 5, "evaluation": 6, "app": 6, "training": 7, "cli": 7, "__main__": 8}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def part(module: str) -> str:
    return module.split(".")[1]


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qa":
            if node.module == "qa":
                names |= {f"qa.{alias.name}" for alias in node.names if alias.name != "__version__"}
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith("qa.")}
    return names


def test_imports_go_one_way_through_the_stages():
    wrong = []
    for module, path in modules():
        mine = LAYERS[part(module)]
        for target in imported(ast.parse(path.read_text(encoding="utf-8"))):
            theirs = LAYERS[part(target)]
            if theirs > mine or (theirs == mine > 0 and part(target) != part(module)):
                wrong.append(f"{module} imports {target}")
    assert not wrong


def module_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports, at the top or inside a function."""
    known = {module for module, _ in modules()}
    graph = {}
    for module, path in modules():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qa":
                named = {f"{node.module}.{alias.name}" for alias in node.names} & known  # `from qa.index import milvus`
                targets |= named or {node.module}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("qa.")}
        graph[module] = {t for t in targets if t in known and t != module}
    return graph


def test_no_module_imports_itself_through_others():
    graph, cycles = module_graph(), []
    for start in graph:
        seen, stack = set(), [(start, (start,))]
        while stack:
            module, path = stack.pop()
            for target in graph[module]:
                if target == start:
                    cycles.append(" -> ".join(path + (start,)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, path + (target,)))
    assert not cycles


def test_only_the_store_factory_asks_which_store_holds_the_index():
    """`settings.store` (the Milvus address) is read by the factory and the Milvus modules only."""
    asking = [f"{module}:{node.lineno}" for module, path in modules()
              if module not in ("qa.config", "qa.index.store") and not module.startswith("qa.index.milvus")
              for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
              if isinstance(node, ast.Attribute) and node.attr == "store" and isinstance(node.value, (ast.Name, ast.Attribute))
              and (node.value.id if isinstance(node.value, ast.Name) else node.value.attr) == "settings"]
    assert not asking


def test_modules_and_functions_stay_short():
    long = []
    for module, path in modules():
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > 400:
            long.append(f"{module}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long


def test_importing_any_module_leaves_the_environment_as_it_was():
    names = [module for module, _ in modules() if not module.endswith("__main__")]
    script = (
        "import importlib, json, os, sys\n"
        "before = dict(os.environ)\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "after = dict(os.environ)\n"
        "print(json.dumps(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))))\n"
    )
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_every_script_imports_the_package_and_explains_itself():
    scripts = sorted((ROOT / "scripts").glob("*.py"))
    for script in scripts:
        assert "sys.path" not in script.read_text(encoding="utf-8"), f"{script.name} edits sys.path"
    running = {script.name: subprocess.Popen([sys.executable, str(script), "--help"], cwd=ROOT, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for script in scripts}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and "usage:" in out, f"{name}: {err[-1000:]}"
