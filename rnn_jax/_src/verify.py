"""Checks of the manual backward pass against autodiff and finite differences (float64).

Shared by ``rnn-jax verify`` and the tests. Each :class:`Case` is one cell with one set of
options; :func:`verify_case` draws a random problem (every parameter entry random, a random
initial carry, lengths ``(T, random, 0)``), runs it forwards and reversed, and compares

* :class:`ManualBPTT` gradients of ``L = <dys, ys> + <dcarry, final_carry>`` with respect to
  params, inputs and initial carry against ``jax.grad`` through :class:`rnn_jax.Autodiff`
  (for ``truncate`` / ``clip`` cases: against ``jax.grad`` of :func:`reference_scan`, the forward
  pass with ``stop_gradient`` at the chunk boundaries and a clipping identity on the carry);
* the same gradients against central finite differences of ``L`` along random directions
  (not for ``truncate`` / ``clip`` cases, whose gradients are not derivatives of ``L``).

Errors are CS231n's ``max |a - b| / max(1e-8, |a| + |b|)``, elementwise over every gradient
entry (or every directional derivative), then the maximum.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, Iterator, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax._src.manual import ManualBPTT
from rnn_jax._src.cell import Cell
from rnn_jax._src.cells.elman import elman
from rnn_jax._src.cells.gru import gru
from rnn_jax._src.cells.jordan import jordan
from rnn_jax._src.cells.lstm import lstm
from rnn_jax._src.cells.scrn import scrn
from rnn_jax._src.cells.clockwork import clockwork
from rnn_jax._src.params import ClockworkCarry
from rnn_jax._src.gradients import Autodiff
from rnn_jax._src.runner import run
from rnn_jax._src.scan import cell_step

AUTODIFF_TOL = 1e-10   # manual vs jax.grad, float64
FD_TOL = 1e-6          # manual vs central differences (eps = 1e-5), float64
# The problems are tiny: XLA's compile time dominates, so skip the expensive LLVM passes.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _sin(a):
    return jnp.sin(a)


def _softsign(a):
    return a / (1 + jnp.abs(a))


def _hard_gate(a):
    return 0.5 * (1 + jnp.tanh(0.5 * a)) ** 2 - 0.25 * jnp.tanh(a) ** 2


class Case(NamedTuple):
    """One row of the verify table."""

    cell: str
    options: str
    make: Callable[[int, int, Any], Cell]
    truncate: Optional[int] = None
    clip: Optional[float] = None


CASES: tuple[Case, ...] = (
    Case("elman", "activation=tanh", lambda i, h, d: elman(i, h, dtype=d)),
    Case("elman", "activation=relu", lambda i, h, d: elman(i, h, activation="relu", dtype=d)),
    Case("elman", "activation=identity",
         lambda i, h, d: elman(i, h, activation="identity", dtype=d)),
    Case("elman", "activation=sin (custom)", lambda i, h, d: elman(i, h, activation=_sin, dtype=d)),
    Case("jordan", "activation=tanh output=identity O=5",
         lambda i, h, d: jordan(i, h, 5, dtype=d)),
    Case("jordan", "activation=relu output=sigmoid O=2",
         lambda i, h, d: jordan(i, h, 2, activation="relu", output_activation="sigmoid", dtype=d)),
    Case("jordan", "activation=softsign output=sin (custom)",
         lambda i, h, d: jordan(i, h, 3, activation=_softsign, output_activation=_sin, dtype=d)),
    Case("lstm", "plain", lambda i, h, d: lstm(i, h, dtype=d)),
    Case("lstm", "peephole", lambda i, h, d: lstm(i, h, peephole=True, dtype=d)),
    Case("lstm", "proj_size=2", lambda i, h, d: lstm(i, max(h, 4), proj_size=2, dtype=d)),
    Case("lstm", "peephole proj_size=2",
         lambda i, h, d: lstm(i, max(h, 4), peephole=True, proj_size=2, dtype=d)),
    Case("lstm", "cell=relu output=identity",
         lambda i, h, d: lstm(i, h, cell_activation="relu", output_activation="identity", dtype=d)),
    Case("lstm", "peephole proj_size=3 gate,cell,output=custom",
         lambda i, h, d: lstm(i, max(h, 4), peephole=True, proj_size=3, gate_activation=_hard_gate,
                              cell_activation=_sin, output_activation=_softsign, dtype=d)),
    Case("gru", "reset=after", lambda i, h, d: gru(i, h, dtype=d)),
    Case("gru", "reset=before", lambda i, h, d: gru(i, h, reset="before", dtype=d)),
    Case("scrn", "alpha=0.95 S=3", lambda i, h, d: scrn(i, h, 3, dtype=d)),
    Case("scrn", "learn_alpha activation=tanh S=2",
         lambda i, h, d: scrn(i, h, 2, learn_alpha=True, activation="tanh", dtype=d)),
    Case("clockwork", "periods=1,2,4,8",     # H rounded up to a multiple of the modules
         lambda i, h, d: clockwork(i, -(-h // 4) * 4, periods=(1, 2, 4, 8), dtype=d)),
    Case("clockwork", "periods=1,3 activation=relu",
         lambda i, h, d: clockwork(i, -(-h // 2) * 2, periods=(1, 3), activation="relu", dtype=d)),
    Case("elman", "activation=tanh truncate=3", lambda i, h, d: elman(i, h, dtype=d), truncate=3),
    Case("lstm", "peephole proj_size=2 truncate=2 clip=0.05",
         lambda i, h, d: lstm(i, max(h, 4), peephole=True, proj_size=2, dtype=d), truncate=2, clip=0.05),
    Case("gru", "reset=after clip=0.02", lambda i, h, d: gru(i, h, dtype=d), clip=0.02),
    Case("clockwork", "periods=1,2 truncate=3 clip=0.05",
         lambda i, h, d: clockwork(i, -(-h // 2) * 2, modules=2, dtype=d), truncate=3, clip=0.05),
    Case("gru", "reset=before truncate=4", lambda i, h, d: gru(i, h, reset="before", dtype=d),
         truncate=4),
)


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def clip_gradient(x: Any, c: float) -> Any:
    """The identity, whose backward pass clips the cotangent elementwise to ``[-c, c]``."""
    return x


clip_gradient.defvjp(lambda x, c: (x, None),
                     lambda c, _, g: (jax.tree.map(lambda d: jnp.clip(d, -c, c), g),))


def reference_scan(cell: Cell, params, xs, carry, valid, *, reverse: bool,
                   truncate: Optional[int] = None, clip: Optional[float] = None):
    """The forward pass whose ``jax.grad`` *defines* truncated / clipped BPTT.

    The runner's masked step (one flat batch, time-major ``xs (T, B, I)``) that, at scan step ``s``, applies ``stop_gradient`` to the
    incoming carry when ``s > 0`` and ``s % truncate == 0``, then :func:`clip_gradient`.
    """

    preact, finish = cell_step(cell)

    def body(state, inp):
        c, s = state
        x, v = inp
        if truncate is not None:
            cut = (s > 0) & (s % truncate == 0)
            c = jax.tree.map(lambda a: jnp.where(cut, jax.lax.stop_gradient(a), a), c)
        if clip is not None:
            c = clip_gradient(c, clip)
        new, y = finish(params, c, preact(params, c, x))
        if v is not None:
            new = jax.tree.map(lambda n, o: jnp.where(v, n, o), new, c)
            y = jnp.where(v, y, jnp.zeros((), y.dtype))
        return (new, s + 1), y

    step = jax.vmap(body, in_axes=((0, None), (0, None if valid is None else 0)),
                    out_axes=((0, None), 0))
    (final, _), ys = jax.lax.scan(step, (carry, jnp.zeros((), jnp.int32)), (xs, valid),
                                  reverse=reverse)
    return final, ys


def call_compiled(f: Callable, *args):
    """``jax.jit(f)(*args)``, compiled without XLA's expensive LLVM passes (tiny problems)."""
    return jax.jit(f).lower(*args).compile(compiler_options=_FAST_COMPILE)(*args)


def rel_err(a: Any, b: Any) -> float:
    """``max |a - b| / max(1e-8, |a| + |b|)`` over every leaf and entry of two pytrees."""
    errs = [jnp.max(jnp.abs(x - y) / jnp.maximum(1e-8, jnp.abs(x) + jnp.abs(y)), initial=0.0)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]
    return float(max(errs, default=0.0))


def random_like(tree: Any, rng: np.random.Generator, scale: float = 1.0) -> Any:
    """A pytree shaped like ``tree`` with standard-normal entries times ``scale``."""
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, [jnp.asarray(scale * rng.normal(size=l.shape), l.dtype)
                                        for l in leaves])


def random_carry(cell: Cell, batch_shape: tuple, rng: np.random.Generator,
                 scale: float = 1.0, dtype: Any = jnp.float64) -> Any:
    """A random carry of ``cell`` for ``batch_shape`` (float64), N(0, scale²), but for a
    Clockwork cell's clock, each module at a random whole phase ``0 ≤ phase < T_k``."""
    carry = random_like(cell.initial_carry(batch_shape, dtype), rng, scale)
    if isinstance(carry, ClockworkCarry):
        periods = np.asarray(cell.options["periods"])
        carry = carry._replace(phase=jnp.asarray(
            rng.integers(0, periods, (*batch_shape, len(periods))), dtype))
    return carry


def problem(case: Case, seed: int, B: int = 3, T: int = 7, I: int = 3, H: int = 4):
    """``(cell, params, xs, carry0, lengths, dys, dcarry)``, random, float64."""
    cell = case.make(I, H, jnp.float64)
    rng = np.random.default_rng(seed)
    params = random_like(cell.init(jax.random.key(seed)), rng, 0.5)
    xs = jnp.asarray(rng.normal(size=(B, T, I)))
    carry0 = random_carry(cell, (B,), rng, 0.5)
    lengths = jnp.asarray([T, int(rng.integers(1, T)), 0][:B])
    dys = jnp.asarray(rng.normal(size=(B, T, cell.output_size)))
    dcarry = random_like(carry0, rng)
    return cell, params, xs, carry0, lengths, dys, dcarry


def verify_case(case: Case, seed: int = 0, directions: int = 4, eps: float = 1e-5) -> dict:
    """One record: ``cell, options, max_rel_err_autodiff, max_rel_err_fd, passed``."""
    cell, params, xs, carry0, lengths, dys, dcarry = problem(case, seed)
    exact = case.truncate is None and case.clip is None
    rng = np.random.default_rng(seed + 1)
    dirs = [random_like((params, xs, carry0), rng) for _ in range(directions)]
    if isinstance(carry0, ClockworkCarry):   # the clock is discrete: never perturbed
        dirs = [(p, x, c._replace(phase=jnp.zeros_like(c.phase))) for p, x, c in dirs]
    dirs = jax.tree.map(lambda *l: jnp.stack(l), *dirs)

    def pairing(final, ys):
        return jnp.vdot(dys, ys) + sum(jnp.vdot(a, b) for a, b in
                                       zip(jax.tree.leaves(dcarry), jax.tree.leaves(final)))

    def loss(p, x, c, reverse, grad):
        return pairing(*run(cell, p, x, c, lengths=lengths, reverse=reverse, grad=grad))

    def ref_loss(p, x, c, reverse):
        x_tm = jnp.moveaxis(x, 1, 0)
        valid = jnp.arange(x.shape[1])[:, None] < lengths[None]
        final, ys = reference_scan(cell, p, x_tm, c, valid, reverse=reverse,
                                   truncate=case.truncate, clip=case.clip)
        return pairing(final, jnp.moveaxis(ys, 0, 1))

    def compute(p, x, c, dirs):
        out = []
        for reverse in (False, True):
            manual = ManualBPTT(truncate=case.truncate, clip=case.clip)
            g_man = jax.grad(loss, (0, 1, 2))(p, x, c, reverse, manual)
            if exact:
                g_ref = jax.grad(loss, (0, 1, 2))(p, x, c, reverse, Autodiff())

                def along(u):
                    z = (p, x, c)
                    plus = jax.tree.map(lambda a, b: a + eps * b, z, u)
                    minus = jax.tree.map(lambda a, b: a - eps * b, z, u)
                    fd = (loss(*plus, reverse, Autodiff()) - loss(*minus, reverse, Autodiff()))
                    an = sum(jnp.vdot(a, b) for a, b in
                             zip(jax.tree.leaves(g_man), jax.tree.leaves(u)))
                    return fd / (2 * eps), an

                fd = jax.vmap(along)(dirs)
            else:
                g_ref = jax.grad(ref_loss, (0, 1, 2))(p, x, c, reverse)
                fd = None
            out.append((g_man, g_ref, fd))
        return out

    err_ad, err_fd = 0.0, (0.0 if exact else None)
    for g_man, g_ref, fd in call_compiled(compute, params, xs, carry0, dirs):
        err_ad = max(err_ad, rel_err(g_man, g_ref))
        if fd is not None:
            err_fd = max(err_fd, rel_err(fd[0], fd[1]))
    passed = err_ad <= AUTODIFF_TOL and (err_fd is None or err_fd <= FD_TOL)
    return {"cell": case.cell, "options": case.options, "max_rel_err_autodiff": err_ad,
            "max_rel_err_fd": err_fd, "passed": bool(passed)}


def verify_all(seed: int = 0, workers: int = 2) -> list[dict]:
    """A record for every :data:`CASES` entry, in order; ``workers`` threads compile at once."""
    return list(verify_each(seed, workers))


def verify_each(seed: int = 0, workers: int = 2) -> Iterator[dict]:
    """The records of :func:`verify_all`, in order, each as soon as it (and those before it)
    finished."""
    if workers <= 1:
        yield from (verify_case(case, seed) for case in CASES)
        return
    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(lambda case: verify_case(case, seed), CASES)
