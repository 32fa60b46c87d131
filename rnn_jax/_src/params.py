"""Parameter and carry pytrees, in PyTorch's layout.

Every weight matrix is stored as ``(out_features, in_features)`` so that a PyTorch state dict
can be moved in by name. Gates are stacked along the first axis in these orders (the single
place where the gate order is defined; every cell and backward pass uses these constants):

* LSTM: ``i, f, g, o`` (input gate, forget gate, cell input, output gate), as ``torch.nn.LSTM``
  and cuDNN.
* GRU: ``r, z, n`` (reset gate, update gate, candidate), as ``torch.nn.GRU`` and cuDNN.

PyTorch mapping, for layer ``k`` of a ``torch.nn.LSTM``::

    LSTMParams(w_ih=weight_ih_l{k}, w_hh=weight_hh_l{k}, b_ih=bias_ih_l{k},
               b_hh=bias_hh_l{k}, w_hr=weight_hr_l{k})   # w_hr only with proj_size > 0

Optional tensors (peepholes, projection) are ``None`` when the option is off; ``None`` is an
empty pytree node, so ``jax.grad`` and optax see only the tensors that exist.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from jaxtyping import Array

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")


class ElmanParams(NamedTuple):
    """``h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``."""

    w_ih: Array  # (H, I)
    w_hh: Array  # (H, H)
    b_ih: Array  # (H,)
    b_hh: Array  # (H,)


class JordanParams(NamedTuple):
    """``h_t = φ(W_ih x_t + b_ih + W_yh y_{t-1})``, ``y_t = g(W_hy h_t + b_y)``."""

    w_ih: Array  # (H, I)
    w_yh: Array  # (H, O)
    b_ih: Array  # (H,)
    w_hy: Array  # (O, H)
    b_y: Array  # (O,)


class LSTMParams(NamedTuple):
    """LSTM weights, gate order ``i, f, g, o`` along the first axis."""

    w_ih: Array  # (4H, I)
    w_hh: Array  # (4H, P), P = proj_size or H
    b_ih: Array  # (4H,)
    b_hh: Array  # (4H,)
    w_ci: Optional[Array] = None  # (H,) peephole c_{t-1} -> i
    w_cf: Optional[Array] = None  # (H,) peephole c_{t-1} -> f
    w_co: Optional[Array] = None  # (H,) peephole c_t -> o
    w_hr: Optional[Array] = None  # (P, H) output projection


class LSTMCarry(NamedTuple):
    """LSTM state: ``h`` (size P) is the output, ``c`` (size H) the memory cell."""

    h: Array
    c: Array


class GRUParams(NamedTuple):
    """GRU weights, gate order ``r, z, n`` along the first axis."""

    w_ih: Array  # (3H, I)
    w_hh: Array  # (3H, H)
    b_ih: Array  # (3H,)
    b_hh: Array  # (3H,)


class SCRNParams(NamedTuple):
    """SCRN weights (Mikolov et al. 2014's names): ``s_t = (1-α) B x_t + α s_{t-1}``,
    ``h_t = σ(P s_t + A x_t + R h_{t-1} + b)``; ``alpha`` only when it is learnt."""

    w_xs: Array            # B: (S, I), input to the slow context
    w_xh: Array            # A: (H, I), input to the hidden layer
    w_sh: Array            # P: (H, S), context to the hidden layer
    w_hh: Array            # R: (H, H)
    b_h: Array             # (H,)
    alpha: Optional[Array] = None   # (S,), learnt per unit; None when fixed


class SCRNCarry(NamedTuple):
    """SCRN state: the hidden layer ``h`` (size H) and the slow context ``s`` (size S)."""

    h: Array
    s: Array


class ClockworkParams(NamedTuple):
    """Clockwork RNN weights: ``h_t = φ(W_ih x_t + W_hh h_{t-1} + b)`` for the active modules.
    ``w_hh`` is block upper triangular (module ``i`` reads module ``j`` only if ``j ≥ i``, i.e.
    from slower modules); its other blocks are stored as zeros and never change (their gradient
    is exactly zero)."""

    w_ih: Array  # (H, I)
    w_hh: Array  # (H, H), block upper triangular in modules of H // g units
    b: Array     # (H,)


class ClockworkCarry(NamedTuple):
    """Clockwork RNN state: the hidden units ``h`` (size H) and every module's clock ``phase``
    (size g): ``t mod T_k`` for the step about to be read; module ``k`` updates when it is 0."""

    h: Array
    phase: Array
