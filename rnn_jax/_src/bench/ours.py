"""rnn_jax variants: ``rnn_jax.run`` with its defaults, each gradient method, another checkout.

``rnn_jax`` is the runner's default. ``rnn_jax:hoist`` computes the input projection for all
steps before the scan, when the core's ``Autodiff`` has that option. With backward, every
gradient method the core exports (``rnn_jax:autodiff``, ``rnn_jax:checkpointed``,
``rnn_jax:manual``) is found with ``getattr``, so methods added or removed later need no change
here; a method that lowers to the same program as the default is not timed twice.

``baseline`` is the default ``run`` of the rnn_jax package of another checkout
(:func:`load_checkout`), timed beside the current one for an A/B of two versions.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from types import ModuleType
from typing import Any, Callable, Iterator, NamedTuple, Optional

from rnn_jax._src.bench.jaxprep import jnp_dtype, prepare_jax
from rnn_jax._src.bench.spec import Prepared, Problem

# impl suffix -> name of the gradient-method class in the rnn_jax namespace
GRAD_METHODS = {"autodiff": "Autodiff", "checkpointed": "Checkpointed", "manual": "ManualBPTT"}
BASELINE = "baseline"
_WEIGHTS = ("w_ih", "w_hh", "b_ih", "b_hh")
_PACKAGE = "rnn_jax"


def load_core(core: Optional[ModuleType] = None) -> ModuleType:
    """The rnn_jax namespace (or a stand-in with the same API, for testing the harness)."""
    if core is not None:
        return core
    import rnn_jax

    return rnn_jax


class Checkout(NamedTuple):
    """The rnn_jax package of another checkout, imported beside the current one.

    Attributes:
      path: the checkout's directory (the one holding ``rnn_jax/__init__.py``).
      core: its ``rnn_jax`` module.
      modules: its ``rnn_jax*`` entries of ``sys.modules``; :meth:`imported` puts them back in
        place while its functions are traced, so that imports inside them (the runner imports
        some modules when called) resolve to this checkout, not to the current package.
      commit: ``git rev-parse HEAD`` of the checkout (with ``-dirty`` when it has uncommitted
        changes), ``None`` outside git.
    """

    path: str
    core: ModuleType
    modules: dict[str, ModuleType]
    commit: Optional[str]

    @contextlib.contextmanager
    def imported(self) -> Iterator[ModuleType]:
        """Within the block, ``import rnn_jax`` (and its submodules) is this checkout's."""
        with _swapped(self.modules):
            yield self.core


def _own_modules() -> dict[str, ModuleType]:
    return {name: m for name, m in sys.modules.items()
            if name == _PACKAGE or name.startswith(_PACKAGE + ".")}


@contextlib.contextmanager
def _swapped(modules: dict[str, ModuleType]) -> Iterator[None]:
    """Replaces every ``rnn_jax*`` entry of ``sys.modules`` by ``modules`` for the block; what
    the block imports is added to ``modules``, and the original entries come back after."""
    saved = _own_modules()
    for name in saved:
        del sys.modules[name]
    sys.modules.update(modules)
    try:
        yield
    finally:
        modules.update(_own_modules())
        for name in _own_modules():
            del sys.modules[name]
        sys.modules.update(saved)


def _commit(path: str) -> Optional[str]:
    """The checkout's commit, or None where ``path`` is not the top of a git work tree (a copy
    of a package inside another repository is not that repository's commit)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", path, *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        if os.path.realpath(git("rev-parse", "--show-toplevel")) != os.path.realpath(path):
            return None
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", _PACKAGE)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def load_checkout(path: str) -> Checkout:
    """Imports the ``rnn_jax`` package found in the directory ``path`` under its own name.

    The current ``rnn_jax*`` modules are taken out of ``sys.modules``, ``path`` is put first on
    ``sys.path`` and ``rnn_jax`` imported; then the current modules are restored, so both
    packages live side by side in one process. Raises ``ValueError`` when ``path`` holds no
    ``rnn_jax`` package.
    """
    path = os.path.abspath(path)
    package = os.path.join(path, _PACKAGE)
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        raise ValueError(f"no rnn_jax package in {path!r} (expected {package}/__init__.py)")
    modules: dict[str, ModuleType] = {}
    with _swapped(modules):
        sys.path.insert(0, path)
        try:
            core = importlib.import_module(_PACKAGE)
        finally:
            sys.path.remove(path)
    origin = os.path.dirname(os.path.abspath(core.__file__ or ""))
    if origin != package:
        raise ValueError(f"importing rnn_jax from {path!r} found {origin!r} instead")
    return Checkout(path, core, modules, _commit(path))


def grad_methods(core: ModuleType) -> dict[str, Any]:
    """Instances of the gradient methods ``core`` provides, keyed by impl suffix."""
    return {name: getattr(core, cls)() for name, cls in GRAD_METHODS.items() if hasattr(core, cls)}


def make_cell(core: ModuleType, problem: Problem) -> tuple[Any, Any]:
    """The rnn_jax cell for ``problem`` and its params holding the problem's weights."""
    import jax

    _, _, inputs, hidden = problem.shape
    cell = getattr(core, problem.cell)(inputs, hidden)
    params = cell.init(jax.random.PRNGKey(0))
    params = params._replace(**{k: problem.weights[k] for k in _WEIGHTS})
    return cell, params


def _hlo(apply: Any, params: Any, xs: Any, pass_: str) -> str:
    """Lowered program text of ``apply``'s pass, to drop methods identical to the default."""
    import jax
    import jax.numpy as jnp

    fn = apply if pass_ == "fwd" else jax.grad(lambda p, x: jnp.sum(apply(p, x)))
    return jax.jit(fn).lower(params, xs).as_text()


def variants(core: ModuleType, pass_: str,
             methods: Optional[tuple[str, ...]] = None) -> list[tuple[str, Any]]:
    """``(impl, grad method)`` pairs: the default, the hoisted projection (``Autodiff(hoist=True)``,
    when the core has that option) and, with backward, each named gradient method."""
    out: list[tuple[str, Any]] = [("rnn_jax", None)]
    autodiff = getattr(core, "Autodiff", None)
    if autodiff is not None and "hoist" in getattr(autodiff, "_fields", ()):
        out.append(("rnn_jax:hoist", autodiff(hoist=True)))
    if pass_ == "fwdbwd":
        out += [(f"rnn_jax:{name}", m) for name, m in grad_methods(core).items()
                if methods is None or name in methods]
    return out


def _grads_to_ours(g: Any) -> dict[str, Any]:
    return {k: getattr(g, k) for k in _WEIGHTS}


def _apply(core: ModuleType, cell: Any, method: Any) -> Callable[[Any, Any], Any]:
    """``apply(params, xs) -> ys``: ``core.run`` with gradient method ``method``."""
    def apply(p: Any, x: Any) -> Any:
        return core.run(cell, p, x, grad=method)[1]

    return apply


def prepare(problem: Problem, pass_: str, core: Optional[ModuleType] = None,
            methods: Optional[tuple[str, ...]] = None,
            keep: Callable[[str], bool] = lambda impl: True) -> list[Prepared]:
    """rnn_jax variants for ``problem`` whose name ``keep`` accepts; a method whose program is
    the default's is skipped."""
    import jax.numpy as jnp

    core = load_core(core)
    cell, params = make_cell(core, problem)
    xs = jnp.zeros(problem.xs.shape, jnp_dtype(problem.dtype))
    out, seen = [], set()
    for impl, method in variants(core, pass_, methods):
        if not keep(impl):
            continue
        apply = _apply(core, cell, method)
        text = _hlo(apply, params, xs, pass_)
        if text in seen:
            continue
        seen.add(text)
        out.append(prepare_jax(impl, problem, pass_, apply, params, _grads_to_ours))
    return out


def prepare_baseline(problem: Problem, pass_: str, checkout: Checkout) -> Prepared:
    """The ``baseline`` variant: ``checkout``'s default ``run``, traced and compiled with that
    checkout's modules in place (the compiled program then runs like any other variant)."""
    with checkout.imported() as core:
        cell, params = make_cell(core, problem)
        return prepare_jax(BASELINE, problem, pass_, _apply(core, cell, None), params,
                           _grads_to_ours)
