"""Truncated BPTT's bias: the angle between the truncated and the full gradient.

Write a model's loss as ``L(θ) = Σ_t ℓ_t(y_t)`` over one sequence, with carries
``c_t = F(c_{t-1}, x_t, θ)`` and step Jacobians ``J_t = ∂c_t/∂c_{t-1}``. The full gradient
sums the influence of the parameters' use at every step ``s`` on every later loss ``t``:

.. math::

    g = Σ_t Σ_{s ≤ t} \\frac{∂ℓ_t}{∂c_t} J_t J_{t-1} \\cdots J_{s+1} \\frac{∂F}{∂θ}\\Big|_s
        \\quad (+ \\text{the direct terms } ∂ℓ_t/∂θ).

``rnn_jax.ManualBPTT(truncate=k)`` is Williams & Peng 1990's epochwise BPTT(k; k): the
sequence is cut into chunks of ``k`` steps and no gradient crosses a chunk boundary, so only
the pairs with ``⌊s/k⌋ = ⌊t/k⌋`` are kept,

.. math::

    g_k = Σ_t Σ_{s ≤ t,\\ ⌊s/k⌋ = ⌊t/k⌋} (\\ldots), \\qquad
    b_k = g - g_k = Σ_t Σ_{s < k⌊t/k⌋} (\\ldots).

The bias ``b_k`` is made of the products of ``t - s ≥ 1`` Jacobians that cross a boundary:
it is small where those products are (contracting dynamics, short memories) and it removes
every dependency longer than ``k`` outright, which is why truncation biases learning towards
short-term dependencies (Tallec & Ollivier 2017, "Unbiasing truncated backpropagation
through time", arXiv 1705.08209; their ARTBP reweights random truncations to remove it;
``rnn_jax.uoro`` is the online, unbiased but noisy alternative). For ``k ≥ T`` nothing is cut
and ``g_k = g``. A step along ``-g_k`` decreases ``L`` to first order iff
``<g_k, g> > 0``, i.e. iff the angle

.. math::

    φ_k = \\angle(g_k, g) = 2 \\operatorname{atan2}\\big(‖\\hat g_k - \\hat g‖,
          ‖\\hat g_k + \\hat g‖\\big), \\qquad \\hat v = v / ‖v‖,

is below 90°. This form of ``arccos(cos φ_k)`` is exact near 0° (Kahan): equal gradients give
exactly 0. Reported beside it: ``‖g_k‖ / ‖g‖`` and ``‖g_k - g‖ / ‖g‖``. Gradients are flattened
over the selected parameters and compared in float64.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import numpy as np

from rnn_jax._src.gradients import GradientMethod
from rnn_jax._src.manual import ManualBPTT


class TruncationAngles(NamedTuple):
    """What :func:`truncation_angles` returns; arrays of shape ``(len(ks),)``.

    Attributes:
      ks: the truncation lengths, as given.
      angles: ``∠(g_k, g)`` in degrees, in ``[0, 180]`` (NaN where ``g_k = 0``).
      rel_norms: ``‖g_k‖ / ‖g‖``.
      rel_errors: ``‖g_k - g‖ / ‖g‖``.
      full_norm: ``‖g‖``.
    """

    ks: tuple[int, ...]
    angles: np.ndarray
    rel_norms: np.ndarray
    rel_errors: np.ndarray
    full_norm: float


def flat_gradient(tree: Any) -> np.ndarray:
    """The leaves of a gradient pytree, flattened and concatenated, in float64."""
    leaves = [np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def gradient_angle(a: Any, b: Any) -> float:
    """The angle in degrees between two gradients (pytrees of the same structure, or
    vectors): ``2 atan2(‖â - b̂‖, ‖â + b̂‖)``, exact for equal inputs (0.0). A zero gradient
    makes the angle undefined: ``ValueError``."""
    u, w = flat_gradient(a), flat_gradient(b)
    if u.shape != w.shape:
        raise ValueError(f"the gradients have {u.size} and {w.size} numbers")
    nu, nw = np.linalg.norm(u), np.linalg.norm(w)
    if not (np.isfinite(nu) and np.isfinite(nw)):
        raise ValueError("a gradient is not finite")
    if nu == 0 or nw == 0:
        raise ValueError("a gradient is zero: its angle is undefined")
    u, w = u / nu, w / nw
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(u - w), np.linalg.norm(u + w))))


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must hold at least one truncation length")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"truncation lengths must be positive ints, got {k!r}")
    return tuple(int(k) for k in ks)


def truncation_angles(loss: Callable[[Any, GradientMethod], Any], params: Any,
                      ks: Sequence[int], *, reference: Optional[GradientMethod] = None,
                      select: Optional[Callable[[Any], Any]] = None,
                      jit: bool = True) -> TruncationAngles:
    """The angle and relative norm between truncated-BPTT gradients and the full gradient.

    Args:
      loss: ``loss(params, grad_method) -> scalar``: the model's loss with every
        ``rnn_jax.run`` inside it taking ``grad=grad_method``. Passing the method, not a
        cell, lets any model (readouts, layers, several runs) be measured as it is trained.
      params: the point (a pytree) at which the gradients are taken.
      ks: truncation lengths ``k ≥ 1``; ``g_k`` is the gradient with
        ``rnn_jax.ManualBPTT(truncate=k)`` (its ``clip`` is the reference's, if that is a
        ``ManualBPTT``). A ``k`` at least the sequence length gives angle 0 exactly.
      reference: the method of the full gradient ``g`` (default ``ManualBPTT()``; any other
        method gives the same gradient to rounding, so the angles would not be exactly 0).
      select: ``select(grads) -> subtree`` compared (default: all of them). The gradients
        of parameters read outside the recurrence (a readout) are exact under truncation;
        ``select=lambda g: g.cell`` measures the recurrent part undiluted.
      jit: compile each gradient (one compilation per ``k``).

    Returns:
      a :class:`TruncationAngles`.
    """
    ks = _check_ks(ks)
    reference = ManualBPTT() if reference is None else reference
    if not isinstance(reference, GradientMethod):
        raise TypeError(f"reference must be a gradient method (rnn_jax.ManualBPTT()), "
                        f"got {reference!r}")
    if not callable(loss):
        raise TypeError(f"loss must be a function (params, grad_method) -> scalar, got {loss!r}")
    clip = reference.clip if isinstance(reference, ManualBPTT) else None
    pick = (lambda g: g) if select is None else select

    def gradient(method: GradientMethod) -> np.ndarray:
        fn = jax.grad(lambda p: loss(p, method))
        return flat_gradient(pick((jax.jit(fn) if jit else fn)(params)))

    full = gradient(reference)
    norm = float(np.linalg.norm(full))
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"the full gradient's norm is {norm}: no angle to measure")
    angles, rel_norms, rel_errors = [], [], []
    for k in ks:
        g = gradient(ManualBPTT(truncate=k, clip=clip))
        gn = float(np.linalg.norm(g))
        angles.append(gradient_angle(g, full) if gn > 0 else float("nan"))
        rel_norms.append(gn / norm)
        rel_errors.append(float(np.linalg.norm(g - full)) / norm)
    return TruncationAngles(ks, np.array(angles), np.array(rel_norms), np.array(rel_errors),
                            norm)
