"""Whole-project checks: lint, formatting, documentation and layering rules.

These guard rules that no single module's tests can see: the tree is ruff
clean, the package type-checks with mypy, the Sphinx docs build without a
warning, the sans-I/O engine does not reach into Twisted, the file system,
threads or the configuration side, the modules import each other without a
cycle, and nothing ever creates ``twisted/__init__.py`` (which would shadow
Twisted itself once installed). The layers and their rules are described in
docs/engine.rst ("Layers").
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "twisted_sslfile"
ENGINE = PACKAGE / "engine"

# Generous: a cold Sphinx build on a slow CI machine takes some seconds.
TIMEOUT = 600


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ARGS`` from the repository root, capturing output."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit status {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def _is_twisted(module: str) -> bool:
    # "twisted_sslfile" starts with "twisted" too; only the real package counts.
    return module == "twisted" or module.startswith("twisted.")


def _engine_sources() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


#: Standard-library modules the engine may not import: they reach files,
#: sockets, processes, threads, the clock or the system's randomness, all of
#: which belong to the adapters or come in through the Context (``clock``,
#: ``random``, :class:`VerificationPolicy`'s loader, a ticket keys' lock).
ENGINE_FORBIDDEN_MODULES = frozenset(
    {
        "_thread",
        "asyncio",
        "builtins",
        "concurrent",
        "fcntl",
        "glob",
        "io",
        "mmap",
        "multiprocessing",
        "os",
        "pathlib",
        "queue",
        "random",
        "secrets",
        "select",
        "selectors",
        "shutil",
        "signal",
        "socket",
        "ssl",
        "subprocess",
        "tempfile",
        "threading",
        "time",
    }
)
#: Built-in functions that do I/O.
ENGINE_FORBIDDEN_CALLS = frozenset({"open", "print", "input"})
#: Methods that read the wall clock (``datetime.now()``, ``date.today()``).
ENGINE_CLOCK_METHODS = frozenset({"now", "utcnow", "today"})
#: The package's modules outside engine/ that the engine may import: the
#: registries and the errors, which import nothing else of the package.
ENGINE_ALLOWED_IMPORTS = frozenset(
    {"twisted_sslfile.constants", "twisted_sslfile.errors"}
)
#: ... and, for the type checker only (under ``if TYPE_CHECKING:``), the
#: Context the engine is handed.
ENGINE_TYPE_ONLY_IMPORTS = frozenset({"twisted_sslfile.context"})


def _is_type_checking(node: ast.If) -> bool:
    return ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _imports(
    tree: ast.Module, module: str, is_package: bool
) -> list[tuple[int, str, bool]]:
    """Every import in ``tree``, anywhere in it: (line, module, type-only).

    Relative imports are resolved against ``module``; ``from P import M``
    names the submodule ``P.M`` when M is one (the caller decides, by
    checking both ``P.M`` and ``P``).  ``importlib.import_module("X")`` and
    ``__import__("X")`` with a literal name count as imports of X.
    """
    found: list[tuple[int, str, bool]] = []
    base = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_type_only = type_only
            if isinstance(child, ast.If) and _is_type_checking(child):
                for item in child.body:
                    visit_one(item, True)
                for item in child.orelse:
                    visit_one(item, type_only)
                continue
            visit_one(child, child_type_only)

    def visit_one(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name, type_only))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = ".".join(base[: len(base) - node.level + 1])
                target = prefix + ("." + node.module if node.module else "")
            else:
                target = node.module or ""
            for alias in node.names:
                found.append((node.lineno, f"{target}.{alias.name}", type_only))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ast.unparse(node.func)
            in {"importlib.import_module", "import_module", "__import__"}
        ):
            found.append((node.lineno, node.args[0].value, type_only))
        visit(node, type_only)

    visit(tree, False)
    return found


def _resolve(name: str, modules: set[str]) -> str | None:
    """The package module ``name`` (or ``from``-import target) refers to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _engine_offences(
    source: str, module: str, modules: set[str], *, is_package: bool = False
) -> list[str]:
    """What in one engine module's ``source`` breaks the engine's rules."""
    tree = ast.parse(source)
    offences: list[str] = []
    for line, name, type_only in _imports(tree, module, is_package):
        top = name.split(".")[0]
        if top in ENGINE_FORBIDDEN_MODULES:
            offences.append(f"{line}: imports {top}")
            continue
        if top != "twisted_sslfile":
            continue
        target = _resolve(name, modules)
        if target is None or target.startswith("twisted_sslfile.engine"):
            continue
        if target == "twisted_sslfile" and name.count(".") >= 1:
            target = name  # from twisted_sslfile import <a name>: not allowed
        if target in ENGINE_ALLOWED_IMPORTS:
            continue
        if type_only and target in ENGINE_TYPE_ONLY_IMPORTS:
            continue
        offences.append(f"{line}: imports {target}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in ENGINE_FORBIDDEN_CALLS:
            offences.append(f"{node.lineno}: calls {node.func.id}()")
        elif (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in ENGINE_CLOCK_METHODS
            and not node.args
        ):
            offences.append(f"{node.lineno}: reads the clock ({ast.unparse(node)})")
    return offences


def _package_sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _import_graph(sources: dict[str, str], packages: set[str]) -> dict[str, set[str]]:
    """Module -> the package modules it imports, by any import statement.

    Imports inside functions and under ``if TYPE_CHECKING:`` count as much
    as those at the top: a cycle through a deferred import is still a
    cycle, one that only breaks later.  ``from P import M`` of a submodule
    is an edge to ``P.M`` alone (the package ``P`` is imported first in
    any case); importing a plain name from a package is an edge to it.
    """
    modules = set(sources)
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        edges: set[str] = set()
        for _line, name, _type_only in _imports(
            ast.parse(source), module, module in packages
        ):
            target = _resolve(name, modules)
            if target is not None and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


class LintTests(SynchronousTestCase):
    """ruff, configured in pyproject.toml, over the whole repository."""

    def test_ruff_check(self) -> None:
        result = _run("ruff", "check", "--no-cache", "--output-format=concise", ".")
        if result.returncode != 0:
            self.fail("ruff check found problems:\n" + _report(result))

    def test_ruff_format(self) -> None:
        result = _run("ruff", "format", "--no-cache", "--check", ".")
        if result.returncode != 0:
            self.fail(
                "ruff format would change files (run `ruff format .`):\n"
                + _report(result)
            )


class TypeCheckTests(SynchronousTestCase):
    """mypy, configured in pyproject.toml, over the package and its plugins."""

    def test_mypy(self) -> None:
        # No paths: [tool.mypy] files names them, so a plain `python -m mypy`
        # in the checkout checks the same.  The cache (.mypy_cache in the
        # checkout) makes repeated runs take about a second.
        result = _run("mypy")
        if result.returncode != 0:
            self.fail("mypy found problems:\n" + _report(result))


class DocumentationTests(SynchronousTestCase):
    """The Sphinx project builds, and treats every warning as an error."""

    def test_sphinx_build(self) -> None:
        # mktemp() is relative to trial's working directory; sphinx runs elsewhere.
        out = Path(self.mktemp()).resolve()
        result = _run(
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(out / "doctrees"),
            str(ROOT / "docs"),
            str(out / "html"),
        )
        if result.returncode != 0:
            self.fail("sphinx-build -W failed:\n" + _report(result))
        self.assertTrue((out / "html" / "index.html").exists())
        self.assertTrue((out / "html" / "api.html").exists())


#: A module the reader can hold in mind: past this many lines, split it
#: (DESIGN: "splitting a module that grows past ~800 lines is welcome").
MAX_MODULE_LINES = 900


class ModuleSizeTests(SynchronousTestCase):
    """No module of the package grows past :data:`MAX_MODULE_LINES`."""

    def test_modules_stay_small(self) -> None:
        sources = sorted(PACKAGE.rglob("*.py")) + sorted(
            (ROOT / "twisted" / "plugins").glob("*.py")
        )
        self.assertGreater(len(sources), 30)  # the scan sees the package
        too_long = {
            str(path.relative_to(ROOT)): lines
            for path in sources
            if (lines := len(path.read_text(encoding="utf-8").splitlines()))
            > MAX_MODULE_LINES
        }
        self.assertEqual(too_long, {})


class LayeringTests(SynchronousTestCase):
    """engine/ is sans-I/O: no Twisted, no files, no threads, no config side."""

    def test_engine_sources_exist(self) -> None:
        """
        The scans below are not vacuous: they see the engine's modules.
        """
        names = {path.name for path in _engine_sources()}
        self.assertIn("__init__.py", names)
        self.assertIn("events.py", names)

    def test_engine_source_imports_no_twisted(self) -> None:
        """
        No module under engine/ names Twisted in an import statement or in an
        ``importlib.import_module`` / ``__import__`` call.
        """
        offences = []
        for path in _engine_sources():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                elif (
                    isinstance(node, ast.Call)
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and ast.unparse(node.func)
                    in {"importlib.import_module", "import_module", "__import__"}
                ):
                    names = [node.args[0].value]
                offences.extend(
                    f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}"
                    for name in names
                    if _is_twisted(name)
                )
        self.assertEqual(offences, [])

    def test_engine_import_closure_has_no_twisted(self) -> None:
        """
        Importing every engine module in a fresh interpreter loads no Twisted
        module, directly or through anything the engine imports.
        """
        modules = []
        for path in _engine_sources():
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(".".join(parts))
        script = (
            "import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "loaded = sorted(m for m in sys.modules\n"
            "                if m == 'twisted' or m.startswith('twisted.'))\n"
            "print('\\n'.join(loaded))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            self.fail("importing the engine modules failed:\n" + _report(result))
        self.assertEqual(result.stdout.split(), [])

    def test_engine_rules(self) -> None:
        """
        No module under engine/ does file I/O, uses threads, reads the clock
        or the system's randomness itself, or imports the package's modules
        outside engine/ other than constants and errors (and the Context,
        for the type checker only).
        """
        modules = set(_package_sources())
        offences = []
        for path in _engine_sources():
            found = _engine_offences(
                path.read_text(encoding="utf-8"),
                _module_name(path),
                modules,
                is_package=path.name == "__init__.py",
            )
            offences += [f"{path.relative_to(ROOT)}:{offence}" for offence in found]
        self.assertEqual(offences, [])

    def test_engine_rules_catch_violations(self) -> None:
        """
        The scan above is not vacuous: each kind of violation, planted in an
        engine module, is found, and what the engine may do is not flagged.
        """
        modules = set(_package_sources())
        module = "twisted_sslfile.engine.planted"
        planted = {
            "import threading\n": "imports threading",
            "from concurrent.futures import Future\n": "imports concurrent",
            "import os\n": "imports os",
            "from pathlib import Path\n": "imports pathlib",
            "import time\n": "imports time",
            "def f():\n    return open('x').read()\n": "calls open()",
            "import datetime\nNOW = datetime.datetime.now()\n": "reads the clock",
            "from .. import x509\n": "imports twisted_sslfile.x509",
            "from ..context import Context\n": "imports twisted_sslfile.context",
            "from twisted_sslfile._files import read_private_file\n": (
                "imports twisted_sslfile._files"
            ),
            "def f():\n    from ..ticketkeyfile import read_key_file\n": (
                "imports twisted_sslfile.ticketkeyfile"
            ),
            "from twisted_sslfile import Context\n": "imports twisted_sslfile.Context",
            "import importlib\nimportlib.import_module('socket')\n": "imports socket",
        }
        for source, expected in planted.items():
            offences = _engine_offences(source, module, modules)
            self.assertTrue(
                any(expected in offence for offence in offences), (source, offences)
            )
        allowed = (
            "from ..errors import InternalError\n"
            "from ..constants import AlertDescription\n"
            "from . import certificates\n"
            "from .sessions import SessionCache\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from ..context import Context\n"
            "def f(aead, when):\n"
            "    return aead.open(b'', b'', b''), when.now(1)\n"
        )
        self.assertEqual(_engine_offences(allowed, module, modules), [])


class ImportGraphTests(SynchronousTestCase):
    """The package's modules import each other without a cycle."""

    def test_no_import_cycles(self) -> None:
        """
        Counting every import - at the top, inside functions and under
        ``if TYPE_CHECKING:`` - no module reaches itself again.
        """
        paths = _package_sources()
        sources = {
            name: path.read_text(encoding="utf-8") for name, path in paths.items()
        }
        packages = {name for name, path in paths.items() if path.name == "__init__.py"}
        graph = _import_graph(sources, packages)
        # Not vacuous: edges of every kind are seen.
        self.assertIn(
            "twisted_sslfile.engine.certificates", graph["twisted_sslfile.x509"]
        )
        self.assertIn("twisted_sslfile.tlslog", graph["twisted_sslfile.protocol"])
        self.assertIn("twisted_sslfile.context", graph["twisted_sslfile.engine.tls13"])
        self.assertEqual(_cycles(graph), [])

    def test_cycles_are_found(self) -> None:
        """
        A cycle through a top-level, a type-only and a deferred import is
        found, and nothing else is.
        """
        sources = {
            "pkg": "",
            "pkg.a": "from pkg import b\n",
            "pkg.b": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from pkg.c import C\n"
            ),
            "pkg.c": "def f():\n    from .a import x\n",
            "pkg.d": "from . import a\nimport pkg.c\n",
        }
        graph = _import_graph(sources, {"pkg"})
        self.assertEqual(graph["pkg.d"], {"pkg.a", "pkg.c"})
        self.assertEqual(_cycles(graph), [["pkg.a", "pkg.b", "pkg.c"]])
        del sources["pkg.b"]
        self.assertEqual(_cycles(_import_graph(sources, {"pkg"})), [])


class PackagingTests(SynchronousTestCase):
    """Rules about the files that make up the distribution."""

    def test_no_twisted_package_init(self) -> None:
        """
        twisted/ and twisted/plugins/ are portions of Twisted's own packages:
        an ``__init__.py`` in either would be installed over Twisted's.
        """
        for relative in ("twisted/__init__.py", "twisted/plugins/__init__.py"):
            self.assertFalse((ROOT / relative).exists(), f"{relative} must not exist")

    def test_lazy_exports(self) -> None:
        """
        ``__all__`` and the lazy export table agree, every exported name
        resolves, and every error and warning class - all of which live in
        ``errors`` - is exported from there.
        """
        import twisted_sslfile
        from twisted_sslfile import errors

        exports = twisted_sslfile._EXPORTS
        self.assertEqual(set(twisted_sslfile.__all__), {*exports, "__version__"})
        for name in twisted_sslfile.__all__:
            self.assertIsNotNone(getattr(twisted_sslfile, name))
        error_classes = {
            name
            for name, value in vars(errors).items()
            if isinstance(value, type)
            and issubclass(value, BaseException)
            and value.__module__ == errors.__name__
        }
        self.assertIn("TLSError", error_classes)
        self.assertIn("ConfigurationError", error_classes)
        self.assertIn("InsecureFileWarning", error_classes)
        self.assertEqual(error_classes - set(exports), set())
        for name in error_classes:
            self.assertEqual(exports[name], errors.__name__, name)

    def test_distributions_carry_licence_types_and_docs(self) -> None:
        """
        The wheel declares the MIT licence and ships it, ships ``py.typed``
        (PEP 561) and the plugin modules; the sdist also carries the docs,
        the examples and the tests, so that a release can be checked alone.
        """
        import tarfile
        import tempfile
        import zipfile

        with tempfile.TemporaryDirectory() as out:
            built = _run("build", "--wheel", "--sdist", "--outdir", out, str(ROOT))
            self.assertEqual(built.returncode, 0, _report(built))
            (wheel,) = Path(out).glob("*.whl")
            (sdist,) = Path(out).glob("*.tar.gz")
            with zipfile.ZipFile(wheel) as archive:
                names = set(archive.namelist())
                (metadata_name,) = (n for n in names if n.endswith("/METADATA"))
                metadata = archive.read(metadata_name).decode()
            with tarfile.open(sdist) as archive:
                sdist_names = {name.split("/", 1)[-1] for name in archive.getnames()}
        self.assertIn("twisted_sslfile/py.typed", names)
        self.assertIn("twisted/plugins/sslfile_echo.py", names)
        self.assertTrue(any(n.endswith("/licenses/LICENSE") for n in names), names)
        self.assertIn("License: MIT", metadata.splitlines())
        self.assertIn("Typing :: Typed", metadata)
        for wanted in ("LICENSE", "docs/index.rst", "examples/echo_server.py"):
            self.assertIn(wanted, sdist_names)
        self.assertIn("tests/test_project.py", sdist_names)

    def test_one_class_per_error(self) -> None:
        """
        An error class named in :mod:`twisted_sslfile.errors` is that very
        class wherever the package shows the name: a second definition of
        the same name would slip past ``except errors.X``.
        """
        import importlib
        import pkgutil

        import twisted_sslfile
        from twisted_sslfile import errors

        names = {
            name: value
            for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, BaseException)
        }
        seen = 0
        for info in pkgutil.walk_packages(twisted_sslfile.__path__, "twisted_sslfile."):
            if info.name == "twisted_sslfile.__main__":
                continue  # importing it parses no arguments, but runs nothing
            module = importlib.import_module(info.name)
            for name, error in names.items():
                if name in vars(module):
                    seen += 1
                    self.assertIs(vars(module)[name], error, f"{info.name}.{name}")
        self.assertGreater(seen, len(names))  # the names do travel

    def test_ci_runs_the_readme_test_command(self) -> None:
        """
        .ci/run is executable and runs the same trial command as the README.
        """
        ci = ROOT / ".ci" / "run"
        self.assertTrue(os.access(ci, os.X_OK), ".ci/run must be executable")
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        match = re.search(r"\.venv/bin/((?:python -m twisted\.)?trial [^`\n]*)", readme)
        self.assertIsNotNone(match, "README.md has no .venv/bin/... trial command")
        assert match is not None
        ci_match = re.search(
            r"^TEST_COMMAND=\((.*)\)$", ci.read_text(encoding="utf-8"), re.M
        )
        self.assertIsNotNone(ci_match, ".ci/run has no TEST_COMMAND=(...) line")
        assert ci_match is not None
        self.assertEqual(ci_match.group(1).split(), match.group(1).split())
