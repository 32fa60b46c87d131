"""Writing results: the JSON file and the markdown tables.

Times are shown as ``median ms (r×)`` where ``r`` is that variant's time over rnn_jax's
default (``r > 1``: rnn_jax is faster). ``floor`` is the matmul-only scan of
:mod:`rnn_jax._src.bench.floor`; ``% floor`` is floor time over the variant's time.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

_OURS = "rnn_jax"


def write_json(path: str, result: dict[str, Any]) -> None:
    """Writes ``result`` (as returned by ``run_benchmark``) as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=str)
        f.write("\n")


def _shape(s: Iterable[int]) -> str:
    return "(" + ",".join(map(str, s)) + ")"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _groups(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, dict]]]:
    """``{(cell, pass): {shape: {impl: record}}}`` in first-seen order."""
    out: dict[tuple[str, str], dict[str, dict[str, dict]]] = {}
    for r in records:
        out.setdefault((r["cell"], r["pass"]), {}).setdefault(_shape(r["shape"]), {})[r["impl"]] = r
    return out


def _impls(by_shape: dict[str, dict[str, dict]], floors: bool) -> list[str]:
    seen: list[str] = []
    for group in by_shape.values():
        seen += [i for i in group if i not in seen and i.startswith("floor:") == floors]
    return seen


def environment_md(result: dict[str, Any]) -> list[str]:
    """Bullet list of machine, versions, settings and the measured matmul throughput."""
    env = result["environment"]
    v = env["versions"]
    m = result["matmul"]
    opts = result["options"]
    settings = ", ".join(f"`{k}={val}`" for k, val in env["env"].items()) or "none set"
    lines = [
        f"- Machine: {env['cpu']}, {env['cpu_count']} cores, {env['platform']}, backend {env['jax_backend']}",
        "- Versions: " + ", ".join(f"{k} {v[k]}" for k in v),
        f"- Allocator/threading environment: {settings}",
        f"- Matmul throughput ({m.get('n', 1024)}² {opts['dtype']}, jitted): "
        f"{m['peak_gflops_start']:.1f} GFLOP/s "
        f"at start, {m['peak_gflops_end']:.1f} at end",
        f"- dtype {opts['dtype']}, median of {opts['reps']} interleaved repetitions after "
        f"{opts['warmup']} warm-up call(s); run took {result['wall_s'] / 60:.1f} min; {env['date']}",
        "- Load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.1f}" for x in env["load_avg"])
        + "; at end: " + ", ".join(f"{x:.1f}" for x in result.get("load_avg_end", env["load_avg"])),
    ]
    if "baseline" in env:
        b = env["baseline"]
        lines.append(f"- Baseline (variant `baseline`): rnn_jax {b.get('version')} from {b['path']}, "
                     f"commit {b.get('commit') or 'unknown'}")
    if "jax_device_kind" in env:
        lines.append(f"- JAX device: {env['jax_device_kind']}; default matmul precision "
                     f"{env.get('jax_default_matmul_precision')}")
    if "torch" in env:
        lines.append(f"- PyTorch threads: {env['torch']['torch_threads']}; "
                     + "; ".join(env["torch"]["torch_parallel"]))
        if env["torch"].get("torch_device") == "cuda":
            t = env["torch"]
            lines.append(f"- PyTorch on {t['gpu']}: CUDA {t['cuda']}, cuDNN {t['cudnn']} "
                         f"(enabled {t['cudnn_enabled']}, allow_tf32 {t['cudnn_allow_tf32']})")
    return lines + [f"- Note: {n}" for n in result.get("notes", [])]


def times_md(cell: str, pass_: str, by_shape: dict[str, dict[str, dict]]) -> list[str]:
    """Median time per shape and variant, with the ratio to rnn_jax's default."""
    impls = _impls(by_shape, floors=False)
    rows = []
    for shape, group in by_shape.items():
        ours = group[_OURS]["median_ms"]
        row = [shape]
        for impl in impls:
            r = group.get(impl)
            row.append("–" if r is None else
                       f"{r['median_ms']:.3g}" + ("" if impl == _OURS else f" ({r['median_ms'] / ours:.2f}×)"))
        row.append(f"{group[_OURS]['floor_ms']:.3g}")
        rows.append(row)
    title = f"### {cell.upper()} {'forward' if pass_ == 'fwd' else 'forward + backward'}: median ms (× rnn_jax)"
    return [title, ""] + _table(["shape (B,T,I,H)"] + impls + ["matmul floor"], rows)


def efficiency_md(cell: str, pass_: str, by_shape: dict[str, dict[str, dict]]) -> list[str]:
    """rnn_jax variants: GFLOP/s, fraction of floor and of peak matmul, compile time, XLA temp."""
    rows = []
    for shape, group in by_shape.items():
        for impl, r in group.items():
            if not impl.startswith(_OURS) and not impl.startswith("flax:Opt"):
                continue
            temp = r["memory"]["temp_bytes"] / 2**20 if r["memory"] else float("nan")
            rows.append([shape, impl, f"{r['gflops']:.1f}", f"{100 * r['floor_fraction']:.0f}%",
                         f"{100 * r['peak_fraction']:.0f}%", f"{r['compile_s']:.2f}",
                         f"{temp:.3g}", f"{r['rel_error_vs_rnn_jax'] or 0:.1e}"])
    header = ["shape", "impl", "GFLOP/s", "% floor", "% peak", "compile s", "XLA temp MiB", "rel err"]
    return [f"#### {cell.upper()} {pass_}: efficiency", ""] + _table(header, rows)


def memory_md(by_shape: dict[str, dict[str, dict]], cell: str, pass_: str) -> list[str]:
    """XLA temp memory (MiB) of every JAX variant."""
    impls = [i for i in _impls(by_shape, floors=False) if i != "torch"]
    rows = []
    for shape, group in by_shape.items():
        row = [shape]
        for impl in impls:
            mem = group.get(impl, {}).get("memory")
            row.append("–" if not mem else f"{mem['temp_bytes'] / 2**20:.3g}")
        rows.append(row)
    return [f"#### {cell.upper()} {pass_}: XLA temp memory, MiB", ""] + _table(["shape"] + impls, rows)


def markdown(result: dict[str, Any], command: str = "") -> str:
    """The full markdown report: environment, then per cell and pass the time table, an
    efficiency table for rnn_jax, and (with backward) every JAX variant's temp memory."""
    lines = ["## Environment", ""] + environment_md(result)
    if command:
        lines += ["", f"Reproduce with: `{command}`"]
    for (cell, pass_), by_shape in _groups(result["records"]).items():
        lines += ["", *times_md(cell, pass_, by_shape), "", *efficiency_md(cell, pass_, by_shape)]
        if pass_ == "fwdbwd":
            lines += ["", *memory_md(by_shape, cell, pass_)]
    return "\n".join(lines) + "\n"


def summary_md(results: list[dict[str, Any]]) -> str:
    """One compact table per cell and pass over several results (e.g. one run per cell):
    rnn_jax's default time, its best variant, and every peer's time as a multiple of it."""
    lines: list[str] = []
    records = [r for result in results for r in result["records"]]
    for (cell, pass_), by_shape in _groups(records).items():
        peers = [i for i in _impls(by_shape, floors=False) if not i.startswith(_OURS)]
        rows = []
        for shape, group in by_shape.items():
            ours = group[_OURS]
            best = min((r for i, r in group.items() if i.startswith(_OURS)), key=lambda r: r["median_ms"])
            mem = ours["memory"]["temp_bytes"] / 2**20 if ours["memory"] else float("nan")
            rows.append([shape, f"{ours['median_ms']:.3g}", f"{best['impl']} {best['median_ms']:.3g}"]
                        + [f"{group[p]['median_ms'] / ours['median_ms']:.2f}×" if p in group else "–"
                           for p in peers]
                        + [f"{100 * ours['floor_fraction']:.0f}%", f"{ours['compile_s']:.2f}", f"{mem:.3g}"])
        lines += ["", f"### {cell.upper()} {pass_}: peer time ÷ rnn_jax time (> 1: rnn_jax faster)", ""]
        lines += _table(["shape (B,T,I,H)", "rnn_jax ms", "best rnn_jax variant ms"] + peers
                        + ["% floor", "compile s", "XLA temp MiB"], rows)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    loaded = []
    for name in sys.argv[1:]:
        with open(name, encoding="utf-8") as f:
            loaded.append(json.load(f))
    print(summary_md(loaded))
