"""rnn_jax variants: ``rnn_jax.run`` with its defaults, the hoisted projection, each gradient method.

``rnn_jax`` is the runner's default; ``rnn_jax:hoist`` computes the input projection for all
steps before the scan; with backward, every gradient method the installed core exports
(``rnn_jax:autodiff``, ``rnn_jax:checkpointed``, ``rnn_jax:manual``) is found with ``getattr``,
so methods added later join automatically. A method that lowers to the same program as the
default (e.g. ``Autodiff()`` while it is the default) is not timed twice.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Optional

from rnn_jax._src.bench.jaxprep import prepare_jax
from rnn_jax._src.bench.spec import Prepared, Problem

# impl suffix -> name of the gradient-method class in the rnn_jax namespace
GRAD_METHODS = {"autodiff": "Autodiff", "checkpointed": "Checkpointed", "manual": "ManualBPTT"}
_WEIGHTS = ("w_ih", "w_hh", "b_ih", "b_hh")


def load_core(core: Optional[ModuleType] = None) -> ModuleType:
    """The rnn_jax namespace (or a stand-in with the same API, for testing the harness)."""
    if core is not None:
        return core
    import rnn_jax

    return rnn_jax


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


def prepare(problem: Problem, pass_: str, core: Optional[ModuleType] = None,
            methods: Optional[tuple[str, ...]] = None,
            keep: Callable[[str], bool] = lambda impl: True) -> list[Prepared]:
    """rnn_jax variants for ``problem`` whose name ``keep`` accepts; a method whose program is
    the default's is skipped."""
    import jax.numpy as jnp

    from rnn_jax._src.bench.jaxprep import jnp_dtype

    core = load_core(core)
    cell, params = make_cell(core, problem)
    xs = jnp.zeros(problem.xs.shape[:2] + (problem.xs.shape[2],), jnp_dtype(problem.dtype))

    def grads_to_ours(g: Any) -> dict[str, Any]:
        return {k: getattr(g, k) for k in _WEIGHTS}

    out, seen = [], set()
    for impl, method in variants(core, pass_, methods):
        if not keep(impl):
            continue
        def apply(p: Any, x: Any, method: Any = method) -> Any:
            return core.run(cell, p, x, grad=method)[1]

        text = _hlo(apply, params, xs, pass_)
        if text in seen:
            continue
        seen.add(text)
        out.append(prepare_jax(impl, problem, pass_, apply, params, grads_to_ours))
    return out
