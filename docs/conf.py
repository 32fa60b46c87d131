"""Sphinx configuration of the rnn_jax documentation site.

Build (warnings are errors, broken cross-references included) and optionally serve::

    python docs/build.py            # -> docs/_build/html
    python docs/build.py --serve    # ... then http://127.0.0.1:8000/

which runs ``sphinx-build -W --keep-going -n -b html docs docs/_build/html``.
Needs the ``docs`` extra: ``pip install -e ".[docs]"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

# ``rnn_jax.initializers`` is an attribute (the module ``rnn_jax._src.initializers``), not an
# importable submodule; register it under its public name so that autodoc documents it as
# ``rnn_jax.initializers`` and its docstring's :func: references resolve there.
import rnn_jax  # noqa: E402

sys.modules.setdefault("rnn_jax.initializers", rnn_jax.initializers)

# --- notebooks: rendered from their stored outputs, never executed -----------------------------
# ``docs/notebooks`` is a symlink to the repository's ``notebooks/``, so the notebooks exist once.


def _check_notebooks_have_outputs(folder: Path) -> None:
    """Fail the build when a notebook has code cells but no stored output at all."""
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise RuntimeError(f"no notebook found in {folder}")
    empty = []
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        if code and not any(c.get("outputs") for c in code):
            empty.append(path.name)
    if empty:
        raise RuntimeError(
            "these notebooks have no stored outputs (the docs never execute notebooks; "
            f"run them and save them with their outputs): {', '.join(empty)}"
        )


_check_notebooks_have_outputs(ROOT / "notebooks")

# --- project -----------------------------------------------------------------------------------

project = "rnn_jax"
author = "rnn_jax contributors"
copyright = "rnn_jax contributors"
try:
    from importlib.metadata import version as _version

    release = _version("rnn-jax")
except Exception:  # not installed: read it from the package
    import rnn_jax

    release = rnn_jax.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",  # also loads myst_parser (Markdown pages)
    "rnn_jax_docs",  # docs/_ext/rnn_jax_docs.py: offline MathJax, public-API check
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints", "README.md"]

# --- warnings: the build runs with -W --keep-going -n ------------------------------------------

nitpicky = True
# Types from other packages cannot be resolved without intersphinx, which needs the network.
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|jaxtyping|numpy|np|jnp|optax|flax|equinox|torch|matplotlib|tqdm)(\..*)?"),
    (r"py:.*", r"(typing|collections|collections\.abc|types|pathlib|os|io|dataclasses|enum)\..*"),
    (r"py:.*", r"(Array|ArrayLike|PRNGKeyArray|DTypeLike|Shape|PyTree|Float|Int|Bool|Key)"),
    (r"py:.*", r"(Path|Callable|Sequence|Mapping|Iterable|Iterator|Any|NamedTuple|Literal)"),
    (r"py:class", r"(Mesh|NamedSharding|PartitionSpec)"),   # jax.sharding's, as annotated
]
nitpick_ignore = [
    # Private helpers and types that docstrings and annotations name but the site does not
    # document (rnn_jax/_src/...): they render as plain code instead of links.
    ("py:func", "outer_sum"),  # rnn_jax/_src/cell.py, Backward's docstring
    ("py:func", "backward_of"),  # rnn_jax/_src/cell.py, Backward's docstring
    ("py:func", "cell_step"),  # rnn_jax/_src/scan.py, loop's docstring
    ("py:func", "rnn_jax._src.persistent.kernels.weights"),  # Persistent's docstring
    ("py:class", "rnn_jax._src.persistent.kernels.Config"),  # Persistent.config's annotation
    ("py:class", "Config"),  # Persistent.config's docstring
    ("py:class", "rnn_jax._src.diagnostics.report.Row"),  # diagnostics.summarise's annotation
    ("py:class", "Row"),
    ("py:mod", "rnn_jax._src.train"),  # rnn_jax/train.py's module docstring
    ("py:class", "rnn_jax._src.train.seq_data.Pairs"),  # train.make_task's splits
    ("py:class", "rnn_jax._src.train.seq_data.TaskData"),
]

# --- autodoc / napoleon ------------------------------------------------------------------------

autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_default_options = {"show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
add_module_names = False
python_display_short_literal_types = True

# --- MyST / myst-nb ----------------------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # never execute: render the outputs stored in the notebooks
nb_execution_raise_on_error = True
nb_merge_streams = True

# --- MathJax, offline ----------------------------------------------------------------------------
# MathJax 3.2.2's files come from the PyPI package ``sphinx-mathjax-offline`` (found with
# importlib at build time and copied into ``_static/mathjax`` of the built site by
# docs/_ext/rnn_jax_docs.py): no CDN is reached, no MathJax file is in the repository.
mathjax_path = "mathjax/tex-mml-chtml.js"

# --- HTML ----------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"rnn_jax {release}"
html_static_path: list[str] = []
html_show_sourcelink = True
html_copy_source = False
