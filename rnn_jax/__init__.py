"""rnn_jax: recurrent networks as pure functions in JAX.

Cells (``elman``, ``irnn``, ``jordan``, ``lstm``, ``gru``, ``scrn``, ``clockwork``) are
NamedTuples of pure functions of one sequence's step, with their hand-written backward step,
over plain pytree params in PyTorch's layout; :func:`run` runs any cell over padded batches
with one ``lax.scan``, planned by :func:`plan`; :func:`layer`, :func:`stacked` and
:func:`bidirectional` build networks; the gradient method (:class:`Autodiff`,
:class:`Checkpointed`, :class:`ManualBPTT`, :class:`Revolve` (binomial checkpointing),
:class:`RTRL` (forward sensitivities), :class:`ParallelInTime` (Newton over the whole sequence,
DEER), and on a GPU :class:`Persistent`, the whole recurrence in one kernel per direction) is an
argument of the runner; :func:`bptt` is the hand-written backward pass as a function;
:func:`uoro` estimates the gradient online without bias.
:func:`seq2seq` builds encoder-decoders.
Submodules: :mod:`rnn_jax.attention` (scores, masks, context), :mod:`rnn_jax.decoding`
(greedy, sampling, beam search), :mod:`rnn_jax.diagnostics` (vanishing/exploding gradients),
:mod:`rnn_jax.train` (optax training, tasks, char-RNN).
"""

from rnn_jax._src import initializers
from rnn_jax._src.bptt import bptt
from rnn_jax._src.cell import Backward, Cell
from rnn_jax._src.cells.clockwork import clockwork
from rnn_jax._src.cells.elman import elman, irnn
from rnn_jax._src.cells.gru import gru
from rnn_jax._src.cells.jordan import jordan
from rnn_jax._src.cells.lstm import lstm
from rnn_jax._src.cells.scrn import scrn
from rnn_jax._src.gradients import Autodiff, Checkpointed, GradientMethod
from rnn_jax._src.manual import ManualBPTT
from rnn_jax._src.layers import Dense, DenseParams, Layer, bidirectional, dense, layer, stacked
from rnn_jax._src.losses import masked_mse, sequence_cross_entropy
from rnn_jax._src.persistent.method import Persistent
from rnn_jax._src.params import (
    ClockworkCarry,
    ClockworkParams,
    GRU_GATES,
    LSTM_GATES,
    ElmanParams,
    GRUParams,
    JordanParams,
    LSTMCarry,
    LSTMParams,
    SCRNCarry,
    SCRNParams,
)
from rnn_jax._src.plan import Plan, plan
from rnn_jax._src.heads import POOLS, Head, classifier, pool, tagger
from rnn_jax._src.ctc import CTCDecoded, ctc_beam_search, ctc_greedy, ctc_loss
from rnn_jax._src.captioning import (Captioned, Captioner, CaptionerParams, captioner,
                                     reinforce_loss)
from rnn_jax._src.runner import run
from rnn_jax._src.revolve import Revolve, revolve_steps
from rnn_jax._src.rtrl import RTRL, rtrl_sensitivities
from rnn_jax._src.parallel_time import ParallelInTime, ParallelInfo, parallel_in_time
from rnn_jax._src.uoro import UOROState, uoro, uoro_loss_grad, uoro_state
from rnn_jax._src.vocab import Embedding, build_vocabulary, embedding, one_of_n, word_ids
from rnn_jax._src.seq2seq import Memory, Seq2Seq, Seq2SeqParams, reverse_valid, seq2seq
from rnn_jax import attention, decoding, diagnostics, interop, train  # noqa: E402  (submodules)

__version__ = "0.1.0"

__all__ = [
    "Autodiff", "Backward", "Cell", "Checkpointed", "ClockworkCarry", "ClockworkParams",
    "Dense", "DenseParams", "ElmanParams", "GRUParams", "GRU_GATES", "GradientMethod",
    "JordanParams", "LSTMCarry", "LSTMParams", "LSTM_GATES", "Layer", "ManualBPTT",
    "Memory", "Persistent", "Plan", "SCRNCarry", "SCRNParams", "Seq2Seq", "Seq2SeqParams",
    "attention", "decoding", "interop", "reverse_valid", "seq2seq", "Head", "POOLS", "classifier", "pool",
    "tagger", "CTCDecoded", "ctc_beam_search", "ctc_greedy", "ctc_loss", "Captioned",
    "Captioner", "CaptionerParams", "captioner", "reinforce_loss", "Embedding", "build_vocabulary", "embedding", "one_of_n", "word_ids", "bidirectional", "bptt", "clockwork",
    "dense", "diagnostics", "elman", "gru", "initializers", "irnn", "jordan", "layer", "lstm",
    "masked_mse", "plan", "run", "scrn", "sequence_cross_entropy", "stacked", "train",
    "Revolve", "revolve_steps", "RTRL", "rtrl_sensitivities", "ParallelInTime", "ParallelInfo",
    "parallel_in_time", "UOROState", "uoro", "uoro_loss_grad", "uoro_state",
]
