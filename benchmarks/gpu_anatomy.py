"""What stands between rnn_jax's ``lax.scan`` and cuDNN's fused RNN kernels on a GPU.

Run on a GPU machine, in one process, interleaved:

1. ``loop``: the cost of one ``lax.scan`` iteration with almost nothing in it (``h = h*a + x_t``
   at B=64, H=256), at ``unroll`` 1 and 8: the floor any scan-based RNN pays per time step.
2. ``rnn``: for LSTM and GRU at the benchmark shapes, forward and forward+backward, rnn_jax at
   several ``unroll`` values, with each gradient method, the features-first layout forced off,
   against ``torch.nn.LSTM``/``GRU`` (cuDNN) and the harness's matmul-only scan
   (``floor:scan``). Every variant's result is compared with rnn_jax's default.
3. ``graphs`` (a child process per setting): the same loop and one LSTM problem with XLA told
   to capture while loops in CUDA graphs (``--xla_gpu_enable_command_buffer``, ``WHILE`` added),
   which removes the per-iteration launches and host round trip.

Records go to ``OUT/anatomy.jsonl`` as they are made (one JSON object per line; a run cut
short keeps what it measured) and a summary table is printed last.

    python benchmarks/gpu_anatomy.py --out /tmp/anatomy --budget-s 420
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

LSTM_SHAPES = ((1, 100, 64, 128), (16, 100, 128, 256), (64, 100, 256, 256), (64, 500, 128, 128),
               (256, 50, 512, 512), (8, 2000, 64, 128))
GRU_SHAPES = ((64, 100, 256, 256), (256, 50, 512, 512))
GRAPH_FLAGS = "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"


def emit(out: str, record: dict[str, Any]) -> None:
    with open(os.path.join(out, "anatomy.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def time_all(fns: dict[str, Any], reps: int) -> dict[str, float]:
    """Median ms of each ``fn()`` (which blocks), interleaved round-robin after two warm-ups."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(reps):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            start = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def loop_cost(out: str, tag: str, reps: int) -> None:
    """Per-iteration cost of a nearly empty scan."""
    import jax
    import jax.numpy as jnp

    fns = {}
    for steps in (100, 1000):
        xs = jax.random.normal(jax.random.PRNGKey(0), (steps, 64, 256))
        for unroll in (1, 8):
            def f(x, unroll=unroll):
                return jax.lax.scan(lambda h, xt: (h * 0.5 + xt, None), jnp.zeros_like(x[0]), x,
                                    unroll=unroll)[0]

            compiled = jax.jit(f).lower(xs).compile()
            fns[(steps, unroll)] = (lambda c=compiled, x=xs: jax.block_until_ready(c(x)))
    medians = time_all({str(k): v for k, v in fns.items()}, reps)
    for (steps, unroll) in fns:
        ms = medians[str((steps, unroll))]
        emit(out, {"section": "loop", "tag": tag, "T": steps, "unroll": unroll, "ms": ms,
                   "us_per_step": ms * 1e3 / steps})


def rnn_variants(cell_name: str, shape: tuple[int, ...], pass_: str, quick: bool) -> list[Any]:
    """Prepared variants (the harness's type) for one group."""
    import rnn_jax
    from rnn_jax._src import tuning
    from rnn_jax._src.bench import floor, peers_torch
    from rnn_jax._src.bench.jaxprep import prepare_jax
    from rnn_jax._src.bench.ours import _WEIGHTS, make_cell
    from rnn_jax._src.bench.spec import make_problem

    problem = make_problem(cell_name, shape, "float32")
    cell, params = make_cell(rnn_jax, problem)

    def grads_to_ours(g: Any) -> dict[str, Any]:
        return {k: getattr(g, k) for k in _WEIGHTS}

    def variant(impl: str, grad: Any = None, unroll: int = 1, batch_first: bool = False) -> Any:
        def apply(p: Any, x: Any) -> Any:
            return rnn_jax.run(cell, p, x, grad=grad, unroll=unroll)[1]

        rules = tuning.FEATURES_FIRST_FROM[tuning.backend()]
        saved = dict(rules)
        if batch_first:
            rules[cell.name] = (2**62, 0)  # read when the function is traced
        try:
            return prepare_jax(impl, problem, pass_, apply, params, grads_to_ours)
        finally:
            rules.clear()
            rules.update(saved)

    unrolls = (1, 8) if quick else (1, 4, 16)
    out = [variant("rnn_jax")] + [variant(f"rnn_jax:unroll{u}", unroll=u) for u in unrolls[1:]]
    if pass_ == "fwdbwd":
        for name, method in (("autodiff", rnn_jax.Autodiff()), ("manual", rnn_jax.ManualBPTT())):
            for u in unrolls if not quick else (1,):
                out.append(variant(f"rnn_jax:{name}:unroll{u}", grad=method, unroll=u))
    if not quick and tuning.features_first(cell_name, shape[0], shape[3]):
        out.append(variant("rnn_jax:batch_first", batch_first=True))
    out += peers_torch.prepare(problem, pass_)
    out += [p for p in floor.prepare(problem, pass_) if p.impl == "floor:scan"]
    return out


def rnn_section(out: str, tag: str, reps: int, deadline: float, quick: bool,
                groups: list[tuple[str, tuple[int, ...]]]) -> None:
    from rnn_jax._src.bench.harness import check_against_ours

    for cell_name, shape in groups:
        for pass_ in ("fwd", "fwdbwd"):
            if time.time() > deadline:
                emit(out, {"section": "rnn", "tag": tag, "skipped": [cell_name, shape, pass_]})
                continue
            prepared = rnn_variants(cell_name, shape, pass_, quick)
            errors = check_against_ours(prepared)
            medians = time_all({p.impl: p.call for p in prepared}, reps)
            for p in prepared:
                emit(out, {"section": "rnn", "tag": tag, "cell": cell_name, "shape": list(shape),
                           "pass": pass_, "impl": p.impl, "ms": medians[p.impl],
                           "compile_s": p.compile_s, "rel_error": errors.get(p.impl),
                           "steps": shape[1]})


def env_record(out: str, tag: str) -> None:
    import jax

    from rnn_jax._src.bench.environment import environment

    env = environment()
    env["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    emit(out, {"section": "env", "tag": tag, **env, "backend": jax.default_backend()})


def child(args: argparse.Namespace) -> None:
    """One setting of XLA_FLAGS (already in the environment): loop cost and one LSTM group."""
    env_record(args.out, args.tag)
    loop_cost(args.out, args.tag, args.reps)
    rnn_section(args.out, args.tag, args.reps, time.time() + args.budget_s, True,
                [("lstm", (64, 100, 256, 256)), ("lstm", (8, 2000, 64, 128))])


def summary(out: str) -> None:
    rows = [json.loads(line) for line in open(os.path.join(out, "anatomy.jsonl"), encoding="utf-8")]
    print("\n== loop: us per scan iteration ==")
    for r in rows:
        if r["section"] == "loop":
            print(f"  {r['tag']:8s} T={r['T']:5d} unroll={r['unroll']:2d}  {r['us_per_step']:7.2f} us")
    print("\n== rnn: ms (ratio torch/variant) ==")
    groups: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        if r["section"] == "rnn" and "impl" in r:
            groups.setdefault((r["tag"], r["cell"], tuple(r["shape"]), r["pass"]), {})[r["impl"]] = r
    for (tag, cell, shape, pass_), g in groups.items():
        torch_ms = g.get("torch", {}).get("ms", float("nan"))
        cells = "  ".join(f"{impl.replace('rnn_jax', 'rj')}={r['ms']:.2f}({torch_ms / r['ms']:.2f})"
                          for impl, r in g.items() if impl != "torch")
        print(f"  {tag:6s} {cell} {'x'.join(map(str, shape)):16s} {pass_:6s} torch={torch_ms:.2f}  {cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting groups after this")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="default", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.child:
        child(args)
        return
    start = time.time()
    env_record(args.out, "default")
    loop_cost(args.out, "default", args.reps)
    groups = [("lstm", s) for s in LSTM_SHAPES] + [("gru", s) for s in GRU_SHAPES]
    rnn_section(args.out, "default", args.reps, start + args.budget_s * 0.7, False, groups)
    left = args.budget_s - (time.time() - start)
    if left > 30:
        # This process holds most of the GPU's memory (JAX preallocates); the child must not.
        env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + GRAPH_FLAGS).strip(),
                   XLA_PYTHON_CLIENT_PREALLOCATE="false")
        proc = subprocess.run([sys.executable, __file__, "--child", "--tag", "graphs", "--out",
                               args.out, "--reps", str(args.reps), "--budget-s", str(left * 0.6)],
                              env=env, capture_output=True, text=True, timeout=left + 60)
        if proc.returncode:
            emit(args.out, {"section": "graphs", "error": proc.stderr[-3000:]})
    summary(args.out)


if __name__ == "__main__":
    main()
