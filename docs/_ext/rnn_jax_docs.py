"""Local Sphinx extension of the rnn_jax docs.

* Offline MathJax: copies MathJax 3's files from the installed PyPI package
  ``sphinx-mathjax-offline`` into ``_static/mathjax`` of the built site (``mathjax_path`` in
  conf.py points there), so no page loads anything from a CDN and no MathJax file is committed.
* Public API check: every name of ``rnn_jax.__all__``, and of the ``__all__`` of the public
  submodules ``rnn_jax.attention``, ``rnn_jax.decoding``, ``rnn_jax.diagnostics``, ``rnn_jax.interop``,
  ``rnn_jax.train`` (and the public names of
  ``rnn_jax.initializers``, which has no ``__all__``) must have an entry in the API reference;
  a missing one is a warning (an error under ``-W``) and fails the build.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import types
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_PACKAGE = "sphinx-mathjax-offline"  # its import name is its folder's, with hyphens
MATHJAX_ENTRY = "tex-mml-chtml.js"
# The combined entry point loads these on demand (TeX extensions, CHTML fonts, menu, a11y, speech).
MATHJAX_PARTS = ("input", "output/chtml", "output/chtml.js", "a11y", "ui", "sre", "adaptors")


def mathjax_source() -> Path:
    """The folder of MathJax 3's es5 files inside the installed ``sphinx-mathjax-offline``."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            f"the docs need MathJax from the PyPI package {MATHJAX_PACKAGE!r} "
            '(pip install -e ".[docs]")'
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    if not (folder / MATHJAX_ENTRY).is_file():
        raise ExtensionError(f"{folder / MATHJAX_ENTRY} not found in {MATHJAX_PACKAGE}")
    return folder


def copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    src = mathjax_source()
    dest = Path(app.outdir) / "_static" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / MATHJAX_ENTRY, dest / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True)
        elif (src / part).is_file():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dest / part)


def _public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    # No __all__ (rnn_jax.initializers): the public functions and aliases it defines or
    # re-exports, not the modules and typing helpers it imports.
    out = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if getattr(value, "__module__", None) in ("typing", "__future__", "collections.abc"):
            continue
        if name in ("annotations",):
            continue
        out.append(name)
    return out


def expected_entries() -> dict[str, list[str]]:
    """``{module path: [its public names]}`` for the package and its public submodules."""
    rnn_jax = importlib.import_module("rnn_jax")
    expected = {"rnn_jax": list(rnn_jax.__all__)}
    for sub in ("attention", "decoding", "diagnostics", "train", "initializers", "interop"):
        expected[f"rnn_jax.{sub}"] = _public_names(getattr(rnn_jax, sub))
    return expected


def check_public_api(app: Sphinx, env) -> None:
    if not app.config.rnn_jax_check_public_api:
        return
    domain = env.get_domain("py")
    documented = set(domain.objects) | set(domain.modules)
    missing = []
    for module, names in expected_entries().items():
        for name in names:
            if f"{module}.{name}" not in documented:
                missing.append(f"{module}.{name}")
    for name in missing:
        logger.warning(
            "public name %s has no entry in the API reference (add it to docs/api/)",
            name,
            type="rnn_jax",
            subtype="public_api",
        )
    if missing:
        raise ExtensionError(
            f"{len(missing)} public name(s) not documented: {', '.join(missing)}"
        )


def drop_type_docstrings(app, what, name, obj, options, lines) -> None:
    """Module constants (``LSTM_GATES``, ``DERIVATIVE_BOUNDS``) have no docstring of their own:
    autodoc would show their type's (``tuple``'s, ``dict``'s); show only their value."""
    if what not in ("data", "attribute") or not lines:
        return
    if len(lines) <= 2 and lines[0].startswith("Alias for field number "):
        lines.clear()  # a NamedTuple field without a docstring: collections' placeholder
        return
    own = getattr(type(obj), "__doc__", None)
    if isinstance(own, str) and own.strip() and lines[0].strip() == own.strip().splitlines()[0].strip():
        lines.clear()


def setup(app: Sphinx) -> dict:
    app.connect("autodoc-process-docstring", drop_type_docstrings)
    app.add_config_value("rnn_jax_check_public_api", True, "env", types=frozenset({bool}))
    app.connect("env-check-consistency", check_public_api)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
