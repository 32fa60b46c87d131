"""Training: optax steps, truncated BPTT, checkpoints, the classic tasks and char-RNN tools.

Names are imported on first use, so that ``rnn_jax`` and its other commands work without the
``train`` extra (flax for checkpoints, tqdm, matplotlib).
"""
import importlib

_EXPORTS = {
    "atis": ("AtisCorpus", "AtisSentence", "INTENTS", "SLOT_LABELS", "TRAIN_CITIES",
             "UNSEEN_CITIES", "atis_corpus"),
    "autoencoder": ("AEModel", "sentence_vectors"),
    "checkpoint": ("CheckpointError", "load_config", "read_step", "restore_checkpoint",
                   "save_checkpoint", "save_config"),
    "data_tasks": ("ADDING_BASELINE_MSE", "AddingBatch", "CopyBatch", "adding_baseline",
                   "adding_problem", "copy_baseline", "copy_baseline_closed_form", "copy_task",
                   "copy_vocab_size"),
    "data_text": ("Corpus", "Streams", "Vocab", "build_vocab", "encode_stream", "load_corpus",
                  "load_prose", "make_streams", "read_corpus", "stdlib_files"),
    "digits": ("CTCSet", "Canvases", "canvases", "digit_images", "listen_set", "log_mel",
               "read_strips", "spoken_digits", "utterances"),
    "experiment": ("default_config", "run_training"),
    "lang_data": ("Tagged", "atis_arrays", "pad_ids", "prose_documents"),
    "loop": ("Interrupted", "NonFinite", "read_metrics", "train_loop"),
    "models": ("Model", "ModelParams", "build_model", "hidden_for_budget"),
    "ngram": ("NGram", "add_k_probs", "fit_ngram", "ngram_bits_per_char", "ngram_probs"),
    "sampling": ("load_trained", "sample"),
    "sharding": ("DataParallel", "data_parallel", "initialize_distributed", "is_primary",
                 "shard_batch", "shard_hidden", "shard_state", "sharded_batches"),
    "step": ("TrainState", "init_state", "make_optimizer", "make_train_step", "tbptt_loss"),
    "waveform": ("load_clip", "plot_waveforms"),
    "seq_data": ("SEQ_BOS", "SEQ_EOS", "SEQ_PAD", "SEQ_VOCAB", "batch_arrays", "ids_to_text",
                 "make_task", "max_lengths", "text_to_ids"),
    "units": ("indentation_depth", "pick_units", "plot_unit", "save_unit_pictures",
              "unit_activations"),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
