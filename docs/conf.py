"""Sphinx configuration for twisted_sslfile.

Builds with ``sphinx-build -W -b html docs OUTDIR``; tests/test_project.py
runs exactly that, so a warning here fails the test suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the checkout this file belongs to, not whatever copy is installed.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted_sslfile import __version__  # noqa: E402  (needs the path above)

project = "twisted_sslfile"
author = "twisted_sslfile contributors"
copyright = "the twisted_sslfile contributors"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# No intersphinx: the docs must build offline and without warnings.
autodoc_member_order = "bysource"
autodoc_default_options = {
    "members": True,
    # The registries' enum values carry no docstrings; list them anyway.
    "undoc-members": True,
    "show-inheritance": True,
}
autodoc_typehints = "description"

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"twisted_sslfile {release}"
