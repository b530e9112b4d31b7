"""Whole-project checks: lint, formatting, documentation and layering rules.

These guard rules that no single module's tests can see: the tree is ruff
clean, the package type-checks with mypy, the Sphinx docs build without a
warning, the sans-I/O engine does not reach into Twisted, and nothing ever
creates ``twisted/__init__.py`` (which would shadow Twisted itself once
installed).
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


class LayeringTests(SynchronousTestCase):
    """engine/ is sans-I/O: it imports nothing from Twisted."""

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
        resolves, and every error class is exported.
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
            if isinstance(value, type) and issubclass(value, errors.TLSError)
        }
        self.assertEqual(error_classes - set(exports), set())

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
