"""PyTorch peers: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (one layer, ``batch_first``), eager.

PyTorch's layout is rnn_jax's, so weights are copied by name. The forward pass runs under
``torch.inference_mode()`` (no autograd tape, as a jitted JAX forward keeps none); the
forward+backward pass calls ``sum(ys).backward()`` with gradients reset to ``None`` first.

The module runs where JAX runs: on the CPU, or on the GPU when JAX's default backend is a GPU
and PyTorch sees CUDA, where ``torch.nn.LSTM`` and friends call cuDNN's fused RNN kernels
(:func:`device`). A GPU call waits for the device (``torch.cuda.synchronize``) before it
returns, as the JAX variants wait with ``block_until_ready``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from rnn_jax._src.bench.spec import Prepared, Problem

MODULES = {"lstm": "LSTM", "gru": "GRU", "elman": "RNN"}
_NAMES = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def device() -> str:
    """``"cuda"`` when JAX runs on a GPU and PyTorch sees CUDA, else ``"cpu"``: the peers are
    compared on the same kind of processor."""
    import jax
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def versions() -> dict[str, object]:
    """PyTorch's version, threading and (on a GPU) cuDNN setup, for the report."""
    import torch

    info: dict[str, object] = {
        "torch": torch.__version__, "torch_threads": str(torch.get_num_threads()),
        "torch_parallel": [line.strip() for line in torch.__config__.parallel_info().splitlines()
                           if "backend" in line or "threads" in line],
        "torch_device": device()}
    if info["torch_device"] == "cuda":
        info.update({
            "gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_enabled": torch.backends.cudnn.enabled,
            # cuDNN's float32 RNNs may use TF32 tensor cores when this is True (the default).
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32})
    return info


def prepare(problem: Problem, pass_: str) -> list[Prepared]:
    """The PyTorch variant for ``problem``."""
    import torch

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[problem.dtype]
    _, _, inputs, hidden = problem.shape
    module = getattr(torch.nn, MODULES[problem.cell])(inputs, hidden, batch_first=True)
    with torch.no_grad():
        for ours, theirs in _NAMES.items():
            getattr(module, theirs).copy_(torch.from_numpy(problem.weights[ours]))
    where = device()
    module = module.to(where, dtype)
    xs = torch.from_numpy(problem.xs).to(where, dtype)
    sync = torch.cuda.synchronize if where == "cuda" else (lambda: None)

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
        sync()

    def result() -> tuple[Optional[np.ndarray], Optional[dict[str, np.ndarray]]]:
        if pass_ == "fwd":
            return forward().float().cpu().numpy(), None
        forward_backward()
        return None, {ours: getattr(module, theirs).grad.float().cpu().numpy()
                      for ours, theirs in _NAMES.items()}

    return [Prepared("torch", call, 0.0, None, result)]
