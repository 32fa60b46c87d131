"""PyTorch as an independent oracle (float64): the same weights, in the documented layout, give
the same outputs, final states and gradients as torch.nn.RNN / LSTM / GRU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax

torch = pytest.importorskip("torch", reason="PyTorch, the parity tests' independent oracle, is not "
                            "installed (pip install -e \".[dev]\" installs it)")
F64 = jnp.float64
B, T, I, H = 3, 6, 4, 5


def _torch_module(kind, **kw):
    torch.manual_seed(0)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    return cls(I, H, batch_first=True, dtype=torch.float64, **kw)


def _our_params(mod, cls):
    sd = {k: jnp.asarray(v.detach().numpy()) for k, v in mod.state_dict().items()}
    fields = dict(w_ih=sd["weight_ih_l0"], w_hh=sd["weight_hh_l0"], b_ih=sd["bias_ih_l0"],
                  b_hh=sd["bias_hh_l0"])
    if "weight_hr_l0" in sd:
        fields["w_hr"] = sd["weight_hr_l0"]
    return cls(**fields)


def _torch_grads(mod, xs, w_out):
    x = torch.tensor(np.asarray(xs), requires_grad=True)
    out, _ = mod(x)
    (out * torch.tensor(np.asarray(w_out))).sum().backward()
    return out.detach().numpy(), {k: v.grad.numpy() for k, v in mod.named_parameters()}, x.grad.numpy()


CASES = [
    ("rnn", dict(nonlinearity="tanh"), lambda: rnn_jax.elman(I, H, dtype=F64), rnn_jax.ElmanParams),
    ("rnn", dict(nonlinearity="relu"), lambda: rnn_jax.elman(I, H, activation="relu", dtype=F64),
     rnn_jax.ElmanParams),
    ("lstm", {}, lambda: rnn_jax.lstm(I, H, dtype=F64), rnn_jax.LSTMParams),
    ("lstm", dict(proj_size=3), lambda: rnn_jax.lstm(I, H, proj_size=3, dtype=F64), rnn_jax.LSTMParams),
    ("gru", {}, lambda: rnn_jax.gru(I, H, dtype=F64), rnn_jax.GRUParams),
]


@pytest.mark.parametrize("kind,kw,make,cls", CASES, ids=["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"])
def test_matches_torch(kind, kw, make, cls):
    mod, cell = _torch_module(kind, **kw), make()
    params = _our_params(mod, cls)
    xs = jax.random.normal(jax.random.key(0), (B, T, I), F64)
    w_out = jax.random.normal(jax.random.key(1), (B, T, cell.output_size), F64)

    def loss(p, x):
        return jnp.sum(rnn_jax.run(cell, p, x)[1] * w_out)

    _, ys = rnn_jax.run(cell, params, xs)
    t_out, t_grads, t_dx = _torch_grads(mod, xs, w_out)
    np.testing.assert_allclose(ys, t_out, rtol=1e-10, atol=1e-12)
    g, dx = jax.grad(loss, argnums=(0, 1))(params, xs)
    names = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
             "b_hh": "bias_hh_l0", "w_hr": "weight_hr_l0"}
    for field, tname in names.items():
        if getattr(g, field, None) is not None:
            np.testing.assert_allclose(getattr(g, field), t_grads[tname], rtol=1e-9, atol=1e-11,
                                       err_msg=field)
    np.testing.assert_allclose(dx, t_dx, rtol=1e-9, atol=1e-11)


def test_padded_batch_matches_torch_packed_sequence():
    mod, cell = _torch_module("lstm"), rnn_jax.lstm(I, H, dtype=F64)
    params = _our_params(mod, rnn_jax.LSTMParams)
    xs = jax.random.normal(jax.random.key(2), (B, T, I), F64)
    lengths = np.array([6, 2, 4])
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(np.asarray(xs)),
                                                     torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    out, (h_n, c_n) = mod(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    carry, ys = rnn_jax.run(cell, params, xs, lengths=jnp.asarray(lengths))
    np.testing.assert_allclose(ys, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(carry.h, h_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(carry.c, c_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_bidirectional_padded_matches_torch():
    torch.manual_seed(1)
    mod = torch.nn.GRU(I, H, batch_first=True, bidirectional=True, dtype=torch.float64)
    sd = {k: jnp.asarray(v.detach().numpy()) for k, v in mod.state_dict().items()}
    fwd = rnn_jax.GRUParams(sd["weight_ih_l0"], sd["weight_hh_l0"], sd["bias_ih_l0"], sd["bias_hh_l0"])
    bwd = rnn_jax.GRUParams(*(sd[f"{n}_l0_reverse"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    bi = rnn_jax.bidirectional(rnn_jax.gru(I, H, dtype=F64))
    xs = jax.random.normal(jax.random.key(3), (B, T, I), F64)
    lengths = np.array([3, 6, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(np.asarray(xs)),
                                                     torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    out, h_n = mod(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    (cf, cb), ys = bi.apply((fwd, bwd), xs, lengths=jnp.asarray(lengths))
    np.testing.assert_allclose(ys, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cf, h_n[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cb, h_n[1].detach().numpy(), rtol=1e-10, atol=1e-12)
