"""The structure, enforced: imports point down the layers, no import cycles, one import package.

The folders ``benchmark/``, ``models_zoo/``, ``evaluation/``, ``human_study/`` and ``captions/`` are
subpackages of ``soundaq`` (pyproject's package-dir mapping), so import-linter, which walks one
folder per root package, cannot see them; this test reads every module's imports with ``ast`` instead
(module-level and function-level ones alike) and checks the same contracts.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Top to bottom; "a | b" are siblings that must not import each other. A module may import its own
#: layer's package and anything below.
LAYERS: dict[str, list[str]] = {
    "soundaq": ["soundaq.benchmark", "soundaq.human_study | soundaq.captions", "soundaq.evaluation",
                "soundaq.models_zoo", "soundaq.base"],
    "soundaq.models_zoo": ["soundaq.models_zoo.training | soundaq.models_zoo.predict | soundaq.models_zoo.cost",
                           "soundaq.models_zoo.callbacks | soundaq.models_zoo.resume",
                           "soundaq.models_zoo.checkpoints | soundaq.models_zoo.precise_bn", "soundaq.models_zoo.module",
                           "soundaq.models_zoo.streaming | soundaq.models_zoo.losses | soundaq.models_zoo.head_init"
                           " | soundaq.models_zoo.cpu_policy | soundaq.models_zoo.rating_scale",
                           "soundaq.models_zoo.metrics | soundaq.models_zoo.nets | soundaq.models_zoo.registry",
                           "soundaq.models_zoo.metric_definitions", "soundaq.models_zoo.eval_data",
                           "soundaq.models_zoo.data", "soundaq.models_zoo.features",
                           "soundaq.models_zoo.outputs | soundaq.models_zoo.schedules"],
    # the perf scripts are entry points of their own: they time whole commands (the leaderboard included)
    "soundaq.benchmark": ["soundaq.benchmark.cli | soundaq.benchmark.perf", "soundaq.benchmark.commands",
                          "soundaq.benchmark.leaderboard",
                          "soundaq.benchmark.options | soundaq.benchmark.terminal"],
}


def package_dirs() -> dict[str, Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    out: dict[str, Path] = {}
    dirs = package_dirs()
    for package, folder in dirs.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            # a file under a folder that is itself mapped as another package belongs to that one
            if any(other != package and other.startswith(package + ".") and path.is_relative_to(dirs[other])
                   for other in dirs):
                continue
            out[name] = path
    return out


def imports_of(path: Path, name: str) -> set[str]:
    """Dotted names a module imports (absolute soundaq imports; relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {f for f in found if f.startswith("soundaq.") or f == "soundaq"}


def _resolve(target: str, names: set[str]) -> str | None:
    while target and target not in names:
        target = target.rpartition(".")[0]
    return target or None


def _layer(module: str, container: str) -> tuple[int, str] | None:
    for i, layer in enumerate(LAYERS[container]):
        for member in (m.strip() for m in layer.split("|")):
            if module == member or module.startswith(member + "."):
                return i, member
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    names = set(mods)
    return {m: {t for t in (_resolve(i, names) for i in imports_of(p, m)) if t and t != m} for m, p in mods.items()}


def test_every_subpackage_is_found(graph):
    for package in ("soundaq.base", "soundaq.models_zoo.nets", "soundaq.benchmark.commands", "soundaq.evaluation",
                    "soundaq.human_study", "soundaq.captions", "soundaq.benchmark.leaderboard"):
        assert package in graph, package


@pytest.mark.parametrize("container", list(LAYERS))
def test_imports_point_down_the_layers(graph, container):
    wrong = []
    for module, targets in graph.items():
        if module == "soundaq":          # the public API loads names lazily from every layer
            continue
        here = _layer(module, container)
        if here is None:
            continue
        for target in targets:
            there = _layer(target, container)
            if there is None or there[1] == here[1]:
                continue
            if there[0] < here[0] or (there[0] == here[0]):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles(graph):
    import networkx as nx

    g = nx.DiGraph()
    for module, targets in graph.items():
        for target in targets:
            if target.startswith(module + "."):   # a package's __init__ re-exporting its own modules
                continue
            if module.startswith(target + ".") and target != "soundaq":  # a module importing its package
                continue
            g.add_edge(module, target)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_installed_soundaq_claims_no_generic_top_level_names(tmp_path):
    """``pip install soundaq`` puts one package into site-packages: the wheel's top level is soundaq only."""
    import shutil
    import subprocess
    import zipfile

    src = tmp_path / "src"          # a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in package_dirs().values():
        if not (src / folder.name).exists():
            shutil.copytree(folder, src / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("soundaq-*.whl"))
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"soundaq"}, tops
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("soundaq/human_study/data/public_questionnaire_key.csv",):
        assert module in names, module
    # every module of the checkout is in the wheel (a subpackage missing from pyproject's list is not)
    in_tree = {f"{pkg.replace('.', '/')}/{path.relative_to(folder).as_posix()}"
               for pkg, folder in package_dirs().items() for path in folder.rglob("*.py")
               if "__pycache__" not in path.parts}
    missing = sorted(in_tree - set(names))
    assert not missing, f"not in the wheel (add the subpackage to [tool.setuptools] packages): {missing[:5]}"


def test_library_code_leaves_the_matplotlib_backend_alone():
    code = ("import matplotlib; matplotlib.use('svg'); import soundaq.evaluation.figures, soundaq.human_study.figures, "
            "soundaq.captions.figures, soundaq.benchmark.leaderboard.report; print(matplotlib.get_backend())")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "svg"
