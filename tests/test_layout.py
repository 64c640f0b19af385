"""The dependency arrows of DESIGN.md, checked on the source and at import time.

ir imports only the standard library, networkx, pydantic and numpy; grammar and lower never
import each other; the search strategies never import torch. The static check reads every
import statement (relative ones resolved through pyproject's package-dir mapping); the
subprocess check catches what the static one cannot see, such as a transitive import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]
#: folder -> import name, e.g. "ir" -> "genomorph.ir"
FOLDERS = {folder: package for package, folder in PACKAGE_DIRS.items()}

THIRD_PARTY_FOR_IR = {"networkx", "pydantic", "pydantic_core", "numpy", "typing_extensions"}
TORCH = {"torch", "torchvision"}


def _module_name(path: Path) -> tuple[str, bool]:
    """Import name of a source file and whether it is a package ``__init__``."""
    rel = path.relative_to(ROOT)
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    is_package = parts[-1] == "__init__.py"
    parts = parts[:-1] if is_package else [*parts[:-1], parts[-1].removesuffix(".py")]
    return ".".join(parts), is_package


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module a file imports (anywhere in it, lazy imports included)."""
    module, is_package = _module_name(path)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            # `from . import x` may import the submodule x
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_every_code_folder_is_mapped() -> None:
    for folder in ("ir", "grammar", "lower", "search", "cli"):
        assert folder in FOLDERS, f"pyproject package-dir does not map {folder}/"


@pytest.mark.parametrize("path", sources("ir"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ir_imports_only_stdlib_networkx_pydantic_numpy(path: Path) -> None:
    allowed_top = set(sys.stdlib_module_names) | THIRD_PARTY_FOR_IR
    bad = {
        name
        for name in imports_of(path)
        if not _is_under(name, "genomorph.ir")
        and name != "genomorph"
        and (_top(name) not in allowed_top or _top(name) == "genomorph")
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; ir/ must stay pure data"


@pytest.mark.parametrize("path", sources("grammar"), ids=lambda p: str(p.relative_to(ROOT)))
def test_grammar_does_not_import_lower_search_cli_or_torch(path: Path) -> None:
    forbidden = ("genomorph.lower", "genomorph.search", "genomorph.cli", *TORCH)
    bad = {name for name in imports_of(path) if any(_is_under(name, f) for f in forbidden)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sources("lower"), ids=lambda p: str(p.relative_to(ROOT)))
def test_lower_does_not_import_grammar_search_or_cli(path: Path) -> None:
    forbidden = ("genomorph.grammar", "genomorph.search", "genomorph.cli", "lark")
    bad = {name for name in imports_of(path) if any(_is_under(name, f) for f in forbidden)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


#: the torch-free half of search/: protocol, store, driver, configs, and the strategies
TORCH_FREE_SEARCH = ("search/core", "search/strategies")


@pytest.mark.parametrize(
    "path",
    [p for folder in TORCH_FREE_SEARCH for p in sources(folder)] + [ROOT / "search" / "__init__.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_torch_free_search_does_not_import_torch_lower_or_runtime(path: Path) -> None:
    forbidden = ("genomorph.lower", "genomorph.search.runtime", *TORCH)
    bad = {name for name in imports_of(path) if any(_is_under(name, f) for f in forbidden)}
    assert not bad, (
        f"{path.relative_to(ROOT)} imports {sorted(bad)}; this half of search/ works on the IR alone"
    )


def _loaded_after_import(folder: str) -> set[str]:
    """Top-level modules loaded by importing every module of ``folder`` in a fresh interpreter."""
    names = [_module_name(p)[0] for p in sources(folder)]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_importing_ir_loads_neither_torch_nor_lark() -> None:
    loaded = _loaded_after_import("ir")
    assert "genomorph.ir.render" in loaded  # the check really imported the package
    assert not loaded & {"torch", "lark", "torchvision", "genomorph.grammar", "genomorph.lower"}


def test_importing_grammar_loads_neither_torch_nor_lower() -> None:
    loaded = _loaded_after_import("grammar")
    assert "lark" in loaded
    assert not loaded & {"torch", "genomorph.lower"}


def test_importing_lower_does_not_load_grammar() -> None:
    loaded = _loaded_after_import("lower")
    assert "torch" in loaded
    assert not loaded & {"lark", "genomorph.grammar"}


@pytest.mark.parametrize("folder", TORCH_FREE_SEARCH)
def test_importing_the_torch_free_half_does_not_load_torch(folder: str) -> None:
    loaded = _loaded_after_import(folder)
    assert _module_name(ROOT / folder / "__init__.py")[0] in loaded
    assert "genomorph.search.core.driver" in loaded or folder != "search/core"
    assert not loaded & {"torch", "torchvision", "genomorph.lower", "genomorph.search.runtime"}


def test_the_torch_half_is_where_torch_lives() -> None:
    loaded = _loaded_after_import("search/runtime")
    assert "torch" in loaded and "genomorph.search.runtime.trainer" in loaded


def test_import_resolution_sees_relative_and_lazy_imports() -> None:
    """The static checks above are only as good as ``imports_of``: prove it on this repo's CLI."""
    found = imports_of(ROOT / "cli" / "main.py")
    assert "genomorph.cli._errors" in found  # `from ._errors import guarded`
    found = imports_of(ROOT / "cli" / "compile_commands.py")
    assert "genomorph.grammar.darts" in found  # imported inside a function


def test_every_package_folder_is_shipped() -> None:
    """`pip install .` ships only the packages pyproject lists (the editable install hides this)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            package, _ = _module_name(init)
            assert package in listed, (
                f"{package} ({init.parent.relative_to(ROOT)}) is missing from pyproject packages"
            )
    assert "*.lark" in setuptools["package-data"]["genomorph.grammar"]
    assert list((ROOT / "grammar").glob("*.lark")), "the grammar file is missing"
