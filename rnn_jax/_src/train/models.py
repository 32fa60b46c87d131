"""Models for the training tasks: one rnn_jax cell followed by an ``rnn_jax.dense`` readout.

A model is described by a small JSON-able config dict, so that ``rnn-jax sample`` can
rebuild it from a checkpoint directory::

    {"cell": "lstm", "input_size": 98, "hidden": 256, "output_size": 98,
     "init": "default", "tokens": true}

``tokens=True`` means integer inputs, fed to the cell one-hot. The SCRN has ``hidden``
hidden units and ``round(0.4 * hidden)`` context units (the paper's 100 + 40); the Clockwork
RNN has ``hidden`` units in 4 modules of periods 1, 2, 4, 8 (``hidden`` rounded down to a
multiple of 4, at least 4).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax

import rnn_jax
from rnn_jax._src import initializers as inits
from rnn_jax._src.cells.clockwork import structure

CELLS = ("elman", "irnn", "lstm", "gru", "jordan", "scrn", "clockwork")
CLOCKWORK_MODULES = 4
INITS = ("default", "orthogonal", "rotation", "identity", "glorot", "pytorch")


class ModelParams(NamedTuple):
    cell: Any
    readout: Any


class Model(NamedTuple):
    """``init(key) -> params``; ``apply(params, xs, carry=None, resets=None, grad=None) ->
    (carry, ys)``."""
    config: dict
    cell: Any
    readout: Any
    init: Callable
    apply: Callable
    initial_carry: Callable


def _w_hh_init(name: str, hidden: int):
    return {
        "orthogonal": inits.orthogonal(),
        "rotation": inits.random_rotation(),
        "identity": inits.identity(),
        "glorot": inits.glorot_uniform(),
        "pytorch": inits.pytorch_uniform(hidden),
    }[name]


def make_cell(name: str, input_size: int, hidden: int, init: str = "default"):
    """An rnn_jax cell by name; ``init`` chooses the recurrent weights' initialiser."""
    if name not in CELLS:
        raise ValueError(f"cell {name!r} is not one of {list(CELLS)}")
    if init not in INITS:
        raise ValueError(f"init {init!r} is not one of {list(INITS)}")
    kw = {} if init == "default" else {"w_hh_init": _w_hh_init(init, hidden)}
    if name == "irnn":
        if kw:
            raise ValueError("irnn fixes its own initialisation (W_hh = I); use --init default")
        return rnn_jax.irnn(input_size, hidden)
    if name == "scrn":
        return rnn_jax.scrn(input_size, hidden, max(1, round(0.4 * hidden)), **kw)
    if name == "clockwork":
        if kw:
            raise ValueError("clockwork's recurrent weights are block triangular; "
                             "use --init default")
        g = CLOCKWORK_MODULES
        return rnn_jax.clockwork(input_size, max(g, hidden - hidden % g), modules=g)
    if name == "jordan":
        if kw:
            raise ValueError("jordan's recurrent weights are (H, O); use --init default")
        return rnn_jax.jordan(input_size, hidden)
    return getattr(rnn_jax, name)(input_size, hidden, **kw)


def build_model(config: dict) -> Model:
    """The model of a config dict (see the module docstring)."""
    cell = make_cell(config["cell"], config["input_size"], config["hidden"],
                     config.get("init", "default"))
    readout = rnn_jax.dense(cell.output_size, config["output_size"])
    tokens = bool(config.get("tokens", False))
    n_in = config["input_size"]

    def init(key):
        k_cell, k_out = jax.random.split(key)
        return ModelParams(cell.init(k_cell), readout.init(k_out))

    def initial_carry(batch_shape=()):
        return cell.initial_carry(tuple(batch_shape))

    def apply(params: ModelParams, xs, carry=None, resets: Optional[jax.Array] = None,
              grad: Optional[rnn_jax.GradientMethod] = None):
        """``xs``: (B, T) tokens or (B, T, I) features; ``resets``: (B, T) bool, True where the
        carry starts afresh before reading ``xs[:, t]``; ``grad``: the runner's gradient method
        (None: its default, ``ManualBPTT()``). Returns ``(carry, outputs (B, T, O))``."""
        dtype = jax.tree.leaves(params.readout)[0].dtype
        x = jax.nn.one_hot(xs, n_in, dtype=dtype) if tokens else xs
        if carry is None:
            carry = cell.initial_carry(x.shape[:-2], x.dtype)
        carry, hs = rnn_jax.run(cell, params.cell, x, carry, resets=resets, grad=grad)
        return carry, readout.apply(params.readout, hs)

    return Model(dict(config), cell, readout, init, apply, initial_carry)


def hidden_states(model: Model, params: ModelParams, xs, carry=None):
    """Hidden state after every step (B, T, H) (the LSTM's ``h``), for unit visualisation."""
    dtype = jax.tree.leaves(params.readout)[0].dtype
    if model.config.get("tokens"):
        xs = jax.nn.one_hot(xs, model.config["input_size"], dtype=dtype)
    x = xs
    _, hs = rnn_jax.run(model.cell, params.cell, x, carry)
    return hs


def count_params(tree, cell=None) -> int:
    """The number of trainable numbers in ``tree``; with a Clockwork ``cell``, the zero
    blocks of its ``W_hh`` are not counted."""
    n = int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))
    if cell is not None and cell.name == "clockwork":
        n -= int((structure(cell.hidden_size, len(cell.options["periods"])) == 0).sum())
    return n


def model_param_count(config: dict) -> int:
    model = build_model(config)
    return count_params(jax.eval_shape(model.init, jax.random.PRNGKey(0)), model.cell)


def hidden_for_budget(config: dict, budget: int) -> int:
    """The hidden size whose model has the parameter count closest to ``budget``."""
    lo, hi = 1, 1
    while model_param_count({**config, "hidden": hi}) < budget:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if model_param_count({**config, "hidden": mid}) < budget:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda h: abs(model_param_count({**config, "hidden": h}) - budget))
    return build_model({**config, "hidden": best}).cell.hidden_size   # as the cell rounds it
