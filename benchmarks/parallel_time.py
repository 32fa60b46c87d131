"""The ``newton`` mode of ``benchmarks/gradient_methods.py``: Newton's method over the sequence.

:func:`rnn_jax.parallel_in_time` solves the triangular system ``c_s = F_s(c_{s-1})`` for the
whole trajectory by Newton iterations (DEER, Lim et al. 2024; quasi-DEER with the diagonal of
``J_s = ∂F_s/∂c``, Gonzalez et al. 2024). How many iterations it takes is governed by the
products ``J_s ⋯ J_{s-k}`` the linearised solve propagates, i.e. by the largest Lyapunov
exponent ``λ₁ = lim_k (1/k) log ‖J_s ⋯ J_{s-k}‖``
(:func:`rnn_jax.diagnostics.lyapunov_exponent`, QR method, Benettin et al. 1980): ``λ₁ < 0``
(contractive) converges in a few iterations, ``λ₁ > 0`` (chaotic) in up to ``T``. Three
measurements, each a list of JSON-ready rows:

* :func:`radius_sweep`: tanh Elman, ``W_hh ~ N(0, 1/H)`` rescaled to spectral radius ``ρ``
  (:func:`rnn_jax.diagnostics.elman_with_radius`), one sequence ``x_t ~ 0.1·N(0, I)``, float64:
  ``λ₁`` and the iterations of full and diagonal Newton (``tol`` the default ``eps^{3/4}``,
  capped at ``max_iters``; a run that hits the cap is reported as not converged).
* :func:`trained_lstm`: an LSTM and a linear readout of its last ``h`` trained with Adam on the
  adding problem (:func:`rnn_jax.train.adding_problem`), float64; the same figures before and
  after training, on one adding-problem sequence, with the mean squared error on a held-out
  batch (0.167 is the error of always answering 1).
* :func:`wall_times`: a GRU (default init, contractive: ``λ₁ < 0``), float32, a batch of
  ``x ~ 0.1·N(0, I)``: median wall time of the sequential run (``rnn_jax.run`` with its default
  method) against ``grad=ParallelInTime(jacobian)``, forward (``ys``) and forward+backward
  (gradient of ``Σ ys²`` w.r.t. the params), with the iterations Newton took (largest in the
  batch). ``ParallelInTime`` falls back to the sequential scan where it does not converge in
  ``T`` iterations; the table then says "did not converge" beside its time.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

import rnn_jax
from rnn_jax.diagnostics import elman_with_radius, lyapunov_exponent
from rnn_jax.train import adding_problem

INPUT_SCALE = 0.1
# Jitted whole, and compiled once per cell (a cell hashes by identity) and shape, so that a
# sweep compiles once and no small operation is compiled on its own.
_lyapunov = jax.jit(lyapunov_exponent, static_argnums=0, static_argnames=("k", "discard"))
_adding = jax.jit(adding_problem, static_argnums=(1, 2, 3))


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _solve(cell: rnn_jax.Cell, params: Any, xs: jax.Array, jacobian: str,
           max_iters: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    info = rnn_jax.parallel_in_time(cell, params, xs, jacobian=jacobian, max_iters=max_iters,
                                    on_failure="nan")[2]
    return jnp.max(info.iterations), jnp.all(info.converged), jnp.max(info.residual)


@functools.partial(jax.jit, static_argnums=(1, 2))
def normal(key: jax.Array, shape: tuple[int, ...], dtype: Any, scale: float = 1.0,
           salt: int = 0) -> jax.Array:
    """``scale · N(0, I)`` of ``shape``, drawn with ``fold_in(key, salt)``."""
    return scale * jax.random.normal(jax.random.fold_in(key, salt), shape, dtype)


def median_ms(fn: Callable[..., Any], args: Sequence[Any], reps: int, warmup: int) -> float:
    """Median wall time (ms) of ``fn(*args)`` over ``reps`` calls, after ``warmup`` calls,
    each blocked until its result is ready."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def markdown(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def newton(cell: rnn_jax.Cell, params: Any, xs: jax.Array, jacobian: str,
           max_iters: int) -> dict[str, Any]:
    """Iterations of :func:`rnn_jax.parallel_in_time` on ``xs`` (``(T, I)`` or ``(B, T, I)``;
    the largest over the batch), whether every sequence converged, and the largest residual."""
    iterations, converged, residual = jax.device_get(
        _solve(cell, params, xs, jacobian, max_iters))
    return {"iterations": int(iterations), "converged": bool(converged),
            "residual": float(residual)}


def lyapunov(cell: rnn_jax.Cell, params: Any, xs: jax.Array) -> float:
    """``λ₁`` along ``xs (T, I)``, the first ``T // 10`` steps discarded to align the frame."""
    return float(_lyapunov(cell, params, xs, discard=xs.shape[0] // 10)[0])


def _iters(result: dict[str, Any]) -> str:
    return str(result["iterations"]) if result["converged"] else "did not converge"


def _dynamics(cell: rnn_jax.Cell, params: Any, xs: jax.Array, max_iters: int) -> dict[str, Any]:
    return {"lyapunov": lyapunov(cell, params, xs),
            "full": newton(cell, params, xs, "full", max_iters),
            "diagonal": newton(cell, params, xs, "diagonal", max_iters)}


def radius_sweep(radii: Sequence[float], hidden: int, inputs: int, length: int,
                 max_iters: int, key: jax.Array) -> list[dict[str, Any]]:
    """λ₁ and Newton iterations of tanh Elman networks of spectral radius ``ρ`` (float64)."""
    k_model, k_x = jax.random.split(key)
    cell = rnn_jax.elman(inputs, hidden, dtype=jnp.float64)
    xs = normal(k_x, (length, inputs), jnp.float64, INPUT_SCALE)
    rows = []
    for rho in radii:
        model = elman_with_radius(k_model, inputs, hidden, rho, dtype=jnp.float64, cell=cell)
        rows.append({"rho": rho, "T": length, "max_iters": max_iters,
                     **_dynamics(cell, model.params, xs, max_iters)})
    return rows


def train_adding(hidden: int, length: int, steps: int, batch: int, key: jax.Array,
                 lr: float = 1e-2) -> tuple[rnn_jax.Cell, Any, Any, float, float]:
    """An LSTM trained with Adam on the adding problem: ``(cell, params before, params after,
    held-out MSE before, after)``; the readout is ``ŷ = wᵀ h_T + b``."""
    cell = rnn_jax.lstm(2, hidden, dtype=jnp.float64)
    k_cell, k_w, k_data, k_eval = jax.random.split(key, 4)
    params = {"cell": jax.jit(cell.init)(k_cell), "b": jnp.zeros((), jnp.float64),
              "w": normal(k_w, (hidden,), jnp.float64, hidden ** -0.5)}

    def loss(p: Any, inputs: jax.Array, targets: jax.Array) -> jax.Array:
        ys = rnn_jax.run(cell, p["cell"], inputs)[1]
        return jnp.mean((ys[:, -1] @ p["w"] + p["b"] - targets) ** 2)

    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))

    @jax.jit
    def step(p: Any, state: Any, i: jax.Array) -> tuple[Any, Any]:
        data = adding_problem(jax.random.fold_in(k_data, i), batch, length, jnp.float64)
        grads = jax.grad(loss)(p, data.inputs, data.targets)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    held_out = _adding(k_eval, 1024, length, jnp.float64)
    mse = jax.jit(lambda p: loss(p, held_out.inputs, held_out.targets))
    trained, state = params, jax.jit(opt.init)(params)
    for i in range(steps):
        trained, state = step(trained, state, jnp.asarray(i))
    return cell, params["cell"], trained["cell"], float(mse(params)), float(mse(trained))


def trained_lstm(hidden: int, train_length: int, steps: int, batch: int, length: int,
                 max_iters: int, key: jax.Array) -> list[dict[str, Any]]:
    """λ₁ and Newton iterations of an LSTM before and after training on the adding problem,
    along one adding-problem sequence of ``length`` steps (float64)."""
    k_train, k_x = jax.random.split(key)
    cell, before, after, mse0, mse1 = train_adding(hidden, train_length, steps, batch, k_train)
    xs = _adding(k_x, 1, length, jnp.float64).inputs[0]
    return [{"model": name, "H": hidden, "train_steps": n, "train_T": train_length,
             "mse": mse, "T": length, "max_iters": max_iters, **_dynamics(cell, p, xs, max_iters)}
            for name, n, p, mse in (("before training", 0, before, mse0),
                                    ("after training", steps, after, mse1))]


def wall_times(lengths: Sequence[int], hidden: int, inputs: int, batch: int, reps: int,
               warmup: int, key: jax.Array,
               passes: Sequence[str] = ("fwd", "fwd+bwd")) -> list[dict[str, Any]]:
    """Median ms of the sequential run and of ``ParallelInTime`` (full, diagonal), forward
    (``"fwd"``) and forward+backward (``"fwd+bwd"``), for a contractive GRU in float32 on the
    default device."""
    k_cell, k_x = jax.random.split(key)
    cell = rnn_jax.gru(inputs, hidden)
    params = jax.jit(cell.init)(k_cell)
    methods: dict[str, Any] = {"sequential": None,
                               "full": rnn_jax.ParallelInTime(jacobian="full"),
                               "diagonal": rnn_jax.ParallelInTime(jacobian="diagonal")}
    rows = []
    for T in lengths:
        xs = normal(k_x, (batch, T, inputs), jnp.float32, INPUT_SCALE, T)
        solved = {m: newton(cell, params, xs, m, T) for m in ("full", "diagonal")}
        for pass_ in passes:
            row: dict[str, Any] = {"T": T, "pass": pass_, "B": batch, "H": hidden}
            for name, method in methods.items():
                def ys(p: Any, x: jax.Array, method: Any = method) -> jax.Array:
                    return rnn_jax.run(cell, p, x, grad=method)[1]

                fn = ys if pass_ == "fwd" else jax.grad(lambda p, x, f=ys: jnp.sum(f(p, x) ** 2))
                compiled = jax.jit(fn).lower(params, xs).compile()
                row[f"{name}_ms"] = median_ms(compiled, (params, xs), reps, warmup)
                if name != "sequential":
                    row[f"{name}_iterations"] = solved[name]["iterations"]
                    row[f"{name}_converged"] = solved[name]["converged"]
            rows.append(row)
    return rows


def _timed(row: dict[str, Any], name: str) -> list[str]:
    iters = _iters({"iterations": row[f"{name}_iterations"],
                    "converged": row[f"{name}_converged"]})
    return [f"{row[f'{name}_ms']:.3g} ({iters})", f"{row[f'{name}_ms'] / row['sequential_ms']:.2f}"]


def report(sweep: list[dict[str, Any]], lstm: list[dict[str, Any]],
           times: list[dict[str, Any]]) -> str:
    """The three markdown tables of the ``newton`` mode."""
    out = []
    if sweep:
        s = sweep[0]
        out += [(f"Newton iterations against λ₁: tanh Elman, T={s['T']}, float64, cap "
                 f"{s['max_iters']} iterations"), "",
                markdown(["ρ(W_hh)", "λ₁", "full Newton", "diagonal (quasi-)Newton"],
                         [[r["rho"], f"{r['lyapunov']:+.3f}", _iters(r["full"]),
                           _iters(r["diagonal"])] for r in sweep]), ""]
    if lstm:
        s = lstm[0]
        out += [(f"LSTM (H={s['H']}) on the adding problem, trained at T={s['train_T']}; "
                 f"Newton on one sequence of T={s['T']}, float64, cap {s['max_iters']}"), "",
                markdown(["model", "train steps", "held-out MSE", "λ₁", "full Newton",
                          "diagonal (quasi-)Newton"],
                         [[r["model"], r["train_steps"], f"{r['mse']:.4f}",
                           f"{r['lyapunov']:+.3f}", _iters(r["full"]), _iters(r["diagonal"])]
                          for r in lstm]), ""]
    if times:
        s = times[0]
        out += [(f"Wall time (ms) against T: GRU H={s['H']}, B={s['B']}, float32, "
                 f"{jax.default_backend()}; Newton iterations in brackets"), "",
                markdown(["T", "pass", "sequential", "full Newton", "÷ sequential",
                          "diagonal", "÷ sequential"],
                         [[r["T"], r["pass"], f"{r['sequential_ms']:.3g}",
                           *_timed(r, "full"), *_timed(r, "diagonal")] for r in times]),
                ""]
    return "\n".join(out)
