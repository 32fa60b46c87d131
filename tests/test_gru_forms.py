"""The GRU forms of benchmarks/gru_forms_ab.py compute rnn_jax's GRU and its gradients.

Their timings are quoted in benchmarks/README.md ("CPU, session 8"); here each form's outputs
and gradients (weights, biases and inputs; two of the forms have a hand-written backward) are
compared with ``rnn_jax.run`` and ``jax.grad`` in float64, as are the weight-gradient layouts
of benchmarks/weight_grad_layouts.py (session 9).
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

jax.config.update("jax_enable_x64", True)
PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gru_forms_ab.py"
spec = importlib.util.spec_from_file_location("gru_forms_ab", PATH)
forms = importlib.util.module_from_spec(spec)
spec.loader.exec_module(forms)


@pytest.mark.parametrize("form", forms.FORMS)
def test_form_matches_rnn_jax(form):
    B, T, I, H = 3, 5, 4, 6
    cell = rnn_jax.gru(I, H, dtype=jnp.float64)
    k = jax.random.split(jax.random.key(0), 4)
    params = cell.init(k[0])
    # Nonzero biases, so that a misplaced b_hn shows.
    params = params._replace(b_ih=jax.random.normal(k[1], params.b_ih.shape, jnp.float64),
                             b_hh=jax.random.normal(k[2], params.b_hh.shape, jnp.float64))
    xs = jax.random.normal(k[3], (B, T, I), jnp.float64)
    apply = forms.apply_fn(form)
    w = jnp.linspace(-1.0, 1.0, B * T * H).reshape(B, T, H)   # a loss that weighs every output

    def ref_loss(p, x):
        return jnp.sum(w * rnn_jax.run(cell, p, x)[1])

    def loss(p, x):
        return jnp.sum(w * apply(p, x))

    np.testing.assert_allclose(apply(params, xs), rnn_jax.run(cell, params, xs)[1],
                               rtol=1e-12, atol=1e-12)
    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, xs)
    want = jax.grad(ref_loss, argnums=(0, 1))(params, xs)
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="form must be one of"):
        forms.apply_fn("transposed")



def test_weight_gradient_layouts_agree():
    """benchmarks/weight_grad_layouts.py: every layout's summed weight gradient is the same
    ``Σ_t δa_tᵀ h_t`` (float64, against numpy)."""
    path = PATH.parent / "weight_grad_layouts.py"
    spec_wg = importlib.util.spec_from_file_location("weight_grad_layouts", path)
    wg = importlib.util.module_from_spec(spec_wg)
    spec_wg.loader.exec_module(wg)
    T, B, G, H = 4, 3, 6, 2
    ops = wg.operands(T, B, G, H, jnp.float64)
    da, h = (np.asarray(a) for a in ops["bf"])
    want = np.einsum("tbg,tbh->gh", da, h)
    for name, (f, layout) in wg.forms(G, H).items():
        got = f(*ops[layout])
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
