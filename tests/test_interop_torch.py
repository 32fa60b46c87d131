"""rnn_jax.interop against PyTorch: outputs and gradients equal on padded batches, round trips
bit exact."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnn_jax
from rnn_jax import interop

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the bench extra)")

CASES = [
    dict(mode="RNN_TANH", num_layers=1, bidirectional=False),
    dict(mode="RNN_RELU", num_layers=2, bidirectional=True),
    dict(mode="LSTM", num_layers=2, bidirectional=True),
    dict(mode="LSTM", num_layers=2, bidirectional=False, proj_size=3),
    dict(mode="GRU", num_layers=3, bidirectional=True),
    dict(mode="GRU", num_layers=1, bidirectional=False, bias=False),
]
I, H, B, T = 5, 6, 3, 7


def _module(mode, proj_size=0, **kw):
    torch.manual_seed(0)
    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}.get(mode, torch.nn.RNN)
    extra = {"proj_size": proj_size} if mode == "LSTM" else {}
    if mode.startswith("RNN"):
        extra["nonlinearity"] = mode[4:].lower()
    return cls(I, H, batch_first=True, **kw, **extra).double()


def _torch_outputs(m, x, lengths):
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x), torch.tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    out, _ = m(packed)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    return y


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_from_torch_matches_outputs_and_gradients_on_padded_batches(case):
    m = _module(**case)
    net, params = interop.from_torch(m)
    r = np.random.default_rng(1)
    x = r.normal(size=(B, T, I))
    lengths = np.array([T, 4, 1])
    x[1, 4:] = np.nan                             # padding reaches nothing
    y_t = _torch_outputs(m, np.nan_to_num(x), lengths)
    _, y = net.apply(params, jnp.asarray(x), lengths=lengths)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    # gradients of the same scalar, name by name
    w = r.normal(size=y.shape)
    (y_t * torch.from_numpy(w)).sum().backward()
    g = jax.grad(lambda p: jnp.sum(net.apply(p, jnp.asarray(x), lengths=lengths)[1] * w))(
        params)
    grads = interop.to_torch(net, g, module=False)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_round_trips_are_bit_exact(case):
    m = _module(**case)
    net, params = interop.from_torch(m)
    back = interop.to_torch(net, params)
    for (k, a), (k2, b) in zip(m.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    net2, params2 = interop.from_torch(m.state_dict(),
                                       nonlinearity="relu" if case["mode"] == "RNN_RELU" else None)
    assert interop.spec_of(m)._replace(dropout=0.0, bias=True) == \
        interop.spec_of(m.state_dict(), "relu" if case["mode"] == "RNN_RELU" else None
                        )._replace(bias=True)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), params, params2)


def test_networks_built_in_rnn_jax_go_to_torch():
    net = rnn_jax.stacked([rnn_jax.bidirectional(rnn_jax.gru(4, 3)),
                           rnn_jax.bidirectional(rnn_jax.gru(6, 3))])
    params = net.init(jax.random.key(0))
    m = interop.to_torch(net, params)
    assert isinstance(m, torch.nn.GRU) and m.num_layers == 2 and m.bidirectional
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(m(torch.from_numpy(x))[0].detach().numpy(),
                               net.apply(params, x)[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("net, words", [
    (lambda: rnn_jax.lstm(3, 4, peephole=True), ["peephole"]),
    (lambda: rnn_jax.gru(3, 4, reset="before"), ["reset"]),
    (lambda: rnn_jax.stacked([rnn_jax.lstm(3, 4), rnn_jax.gru(4, 4)]), ["one cell type"]),
    (lambda: rnn_jax.stacked([rnn_jax.bidirectional(rnn_jax.lstm(3, 4)), rnn_jax.lstm(8, 4)]),
     ["bidirectional in every layer"]),
    (lambda: rnn_jax.bidirectional(rnn_jax.lstm(3, 4), merge="sum"), ["concatenated"]),
])
def test_networks_torch_cannot_hold_are_refused(net, words):
    n = net()
    with pytest.raises(ValueError) as err:
        interop.to_torch(n, n.init(jax.random.key(0)), module=False)
    assert all(w in str(err.value) for w in words), err.value
