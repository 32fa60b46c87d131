"""Layouts of the persistent kernels (``rnn_jax.Persistent``) against the scan and cuDNN.

For each cell, shape and dtype, in one process and interleaved: ``rnn_jax.run`` over the scan
(``scan``, ``grad=ManualBPTT()``), ``torch.nn.LSTM``/``GRU`` on the same device (cuDNN on a
GPU), and ``Persistent`` in each layout given, forward and forward+backward. A layout is
written ``c<chunk>-<s|k>-w<warps>-b<block>[-f16|-nat]`` (``s``: stream ``W_hh`` every step,
``k``: keep it on chip; ``f16``/``nat``: the matmul operands, see ``Persistent.operands``).
A layout that fails to compile (e.g. shared memory) is recorded with its error. Errors are
given against the scan and against the scan at ``jax.default_matmul_precision("highest")``
(``scan:highest``, true float32 matmuls instead of the GPU's default TF32).

    python benchmarks/persistent_sweep.py --cells lstm,gru --shapes 64x500x128x128 \\
        --dtypes float32 --layouts c32-s-w4-b16,c64-s-w4-b16 --out /tmp/sweep.jsonl
"""

from __future__ import annotations

import argparse
import json
import time


def parse_layout(text: str):
    import rnn_jax

    kw = {}
    for tok in text.split("-"):
        if tok in ("s", "k"):
            kw["stream"] = tok == "s"
        elif tok in ("f16", "nat"):
            kw["operands"] = {"f16": "float16", "nat": "native"}[tok]
        else:
            kw[{"c": "chunk", "w": "warps", "b": "block"}[tok[0]]] = int(tok[1:])
    return rnn_jax.Persistent(**kw)


def main() -> None:
    import jax

    import rnn_jax
    from rnn_jax._src.bench import harness, ours
    from rnn_jax._src.bench.jaxprep import prepare_jax
    from rnn_jax._src.bench.spec import make_problem, parse_shape

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--shapes", default="64x500x128x128")
    ap.add_argument("--dtypes", default="float32")
    ap.add_argument("--passes", default="fwd,fwdbwd")
    ap.add_argument("--layouts", default="c64-s-w4-b16")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--budget", type=float, default=1e9, help="seconds; stop starting groups")
    ap.add_argument("--torch", action="store_true", help="time torch.nn.LSTM/GRU too")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    start = time.time()
    out = open(args.out, "a", encoding="utf-8") if args.out else None
    for cell_name in args.cells.split(","):
        for shape_text in args.shapes.split(","):
            for dtype in args.dtypes.split(","):
                for pass_ in args.passes.split(","):
                    if time.time() - start > args.budget:
                        print(json.dumps({"stopped": "budget"}), flush=True)
                        return
                    problem = make_problem(cell_name, parse_shape(shape_text), dtype)
                    cell, params = ours.make_cell(rnn_jax, problem)
                    names = {"w_ih", "w_hh", "b_ih", "b_hh"}
                    prepared, errors = [], {}
                    scan = rnn_jax.ManualBPTT()   # the scan (Persistent may be the default)
                    for impl, method in [("scan", scan), ("scan:highest", "highest")] + [
                            (f"persistent:{t}", parse_layout(t)) for t in args.layouts.split(",")]:
                        def apply(p, x, method=method):
                            if method == "highest":
                                with jax.default_matmul_precision("highest"):
                                    return rnn_jax.run(cell, p, x, grad=scan)[1]
                            return rnn_jax.run(cell, p, x, grad=method)[1]
                        try:
                            prepared.append(prepare_jax(
                                impl, problem, pass_, apply, params,
                                lambda g: {k: getattr(g, k) for k in names}))
                            prepared[-1].result()
                        except Exception as err:  # noqa: BLE001 - a sweep records what fails
                            if prepared and prepared[-1].impl == impl:
                                prepared.pop()
                            errors[impl] = f"{type(err).__name__}: {str(err)[:300]}"
                    if args.torch:
                        from rnn_jax._src.bench import peers_torch
                        prepared += peers_torch.prepare(problem, pass_)
                    # compare with the scan (the first entry), as the harness compares with ours
                    rel = harness.check_against_ours(
                        [p._replace(impl="rnn_jax") if p.impl == "scan" else p for p in prepared])
                    exact = harness.check_against_ours(
                        [p._replace(impl="rnn_jax") if p.impl == "scan:highest" else p
                         for p in prepared])
                    times = harness.time_interleaved(prepared, args.reps)
                    base = None
                    for p in prepared:
                        ms = sorted(times[p.impl])[len(times[p.impl]) // 2]
                        base = ms if p.impl == "scan" else base
                        rec = {"cell": cell_name, "shape": list(problem.shape), "dtype": dtype,
                               "pass": pass_, "impl": p.impl, "median_ms": ms,
                               "compile_s": p.compile_s, "scan_over_this": base / ms,
                               "rel_error_vs_scan": rel.get(p.impl),
                               "rel_error_vs_highest": exact.get(p.impl)}
                        line = json.dumps(rec)
                        print(line, flush=True)
                        if out:
                            out.write(line + "\n")
                    for impl, err in errors.items():
                        line = json.dumps({"cell": cell_name, "shape": list(problem.shape),
                                           "dtype": dtype, "pass": pass_, "impl": impl,
                                           "error": err})
                        print(line, flush=True)
                        if out:
                            out.write(line + "\n")
    if out:
        out.close()


if __name__ == "__main__":
    main()
