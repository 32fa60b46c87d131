"""PyTorch peers: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (one layer, ``batch_first``), eager, CPU.

PyTorch's layout is rnn_jax's, so weights are copied by name. The forward pass runs under
``torch.inference_mode()`` (no autograd tape, as a jitted JAX forward keeps none); the
forward+backward pass calls ``sum(ys).backward()`` with gradients reset to ``None`` first.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from rnn_jax._src.bench.spec import Prepared, Problem

MODULES = {"lstm": "LSTM", "gru": "GRU", "elman": "RNN"}
_NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def versions() -> dict[str, object]:
    """PyTorch's version and threading setup, for the report's environment section."""
    import torch

    return {"torch": torch.__version__, "torch_threads": str(torch.get_num_threads()),
            "torch_parallel": [line.strip() for line in torch.__config__.parallel_info().splitlines()
                               if "backend" in line or "threads" in line]}


def prepare(problem: Problem, pass_: str) -> list[Prepared]:
    """The PyTorch variant for ``problem``."""
    import torch

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[problem.dtype]
    _, _, inputs, hidden = problem.shape
    module = getattr(torch.nn, MODULES[problem.cell])(inputs, hidden, batch_first=True)
    with torch.no_grad():
        for ours, theirs in _NAMES.items():
            getattr(module, theirs).copy_(torch.from_numpy(problem.weights[ours]))
    module = module.to(dtype)
    xs = torch.from_numpy(problem.xs).to(dtype)

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return module(xs)[0]

    def forward_backward() -> None:
        for p in module.parameters():
            p.grad = None
        ys, _ = module(xs)
        ys.float().sum().backward()

    def call() -> None:
        if pass_ == "fwd":
            forward()
        else:
            forward_backward()

    def result() -> tuple[Optional[np.ndarray], Optional[dict[str, np.ndarray]]]:
        if pass_ == "fwd":
            return forward().float().numpy(), None
        forward_backward()
        return None, {ours: getattr(module, theirs).grad.float().numpy()
                      for ours, theirs in _NAMES.items()}

    return [Prepared("torch", call, 0.0, None, result)]
