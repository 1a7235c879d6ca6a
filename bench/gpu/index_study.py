#!/usr/bin/env python3
"""Summary of bench/gpu/index_study.sh: reads the sweeps' JSON (the rows of /index/bench, from
`semskip index-bench --json`), the plain-matmul references and machine.txt in one folder, and
prints a markdown report; writes two SVG plots beside the data (queries/s against recall@10
per backend, and a lookup's cost per step against cache size, GPU against CPU). Standard
library only, so it runs wherever the study ran.

    index_study.py RESULTS_DIR > RESULTS_DIR/index_study.md

Exit status 2 when RESULTS_DIR has no sweep results at all.
"""
import json
import math
import sys
from pathlib import Path

SWEEPS = ["headline", "small", "ann", "step", "real"]


def load(folder, name):
    p = folder / f"{name}.json"
    if not p.exists() or p.stat().st_size == 0:
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"{p}: not JSON ({e})")


def ms(s):
    return f"{1e3 * s:.3f}"


def code(text):
    """A code span that survives inside a markdown table cell."""
    return "`" + text.replace("|", "\\|") + "`"


def table(rows, title_cols):
    out = ["| " + " | ".join(c for c, _ in title_cols) + " |", "|" + "---|" * len(title_cols)]
    for r in rows:
        out.append("| " + " | ".join(f(r) for _, f in title_cols) + " |")
    return "\n".join(out)


BENCH_COLS = [
    ("index", lambda r: code(r["descriptor"])),
    ("device", lambda r: r["device"]),
    ("threads", lambda r: str(r["n_threads"]) if r["device"] == "cpu" else "–"),
    ("build s", lambda r: f"{r['build_s']:.2f}"),
    ("queries/s", lambda r: f"{r['queries_per_s']:.0f}"),
    ("p50 ms", lambda r: ms(r["latency_p50_s"])),
    ("p90 ms", lambda r: ms(r["latency_p90_s"])),
    ("p99 ms", lambda r: ms(r["latency_p99_s"])),
    ("recall@1", lambda r: f"{r['recall_at_1']:.4f}"),
    ("recall@10", lambda r: f"{r['recall_at_k']:.4f}"),
    ("memory MiB", lambda r: f"{r['memory_bytes'] / 2**20:.1f}"),
    ("MFLOP/query", lambda r: f"{r['lookup_query_flops'] / 1e6:.3f}"),
]


def shape(rows):
    r = rows[0]
    return f"N = {r['n_keys']}, d = {r['dim']}, {r['n_queries']} queries per batch, k = {r['k']}, data `{r['data']}`"


def headline_checks(rows, ref):
    """The issue's targets, checked on the rows of the same run."""
    lines = []
    mm = ref[0] if ref else None
    if mm:
        lines.append(f"Plain {mm['dtype']} matmul on {mm['device']} of the same sizes: "
                     f"{ms(mm['matmul_s'])} ms ({mm['matmul_tflops_per_s']:.3g} TFLOP/s), with a full "
                     f"top-{mm['k']}: {ms(mm['matmul_topk_s'])} ms.")
    gpu_exact = [r for r in rows if r["device"].startswith("cuda") and r["recall_at_k"] >= 0.99]
    faiss_cpu = [r for r in rows if r["descriptor"] == "faiss:Flat"]
    if gpu_exact:
        best = min(gpu_exact, key=lambda r: r["latency_p50_s"])
        lines.append(f"Fastest GPU search with recall@10 ≥ 0.99: {code(best['descriptor'])}, "
                     f"{ms(best['latency_p50_s'])} ms per batch, recall@10 {best['recall_at_k']:.4f}.")
        if mm:
            share = mm["matmul_s"] / best["latency_p50_s"]
            verdict = "met" if share >= 0.5 else "not met"
            lines.append(f"Its rate relative to the plain matmul (top-k included): {100 * share:.0f}% "
                         f"(target ≥ 50%: {verdict}).")
        if faiss_cpu:
            ratio = best["queries_per_s"] / faiss_cpu[0]["queries_per_s"]
            verdict = "met" if ratio >= 10 else "not met"
            lines.append(f"Against FAISS CPU Flat on {faiss_cpu[0]['n_threads']} threads: "
                         f"{ratio:.1f}× (target ≥ 10×: {verdict}).")
    return lines


def small_checks(rows):
    gpu = [r for r in rows if r["device"].startswith("cuda")]
    if not gpu:
        return []
    best = min(gpu, key=lambda r: r["latency_p50_s"])
    verdict = "met" if best["latency_p50_s"] <= 50e-6 else "not met"
    return [f"Lowest GPU latency: {code(best['descriptor'])}, {1e6 * best['latency_p50_s']:.1f} µs per batch "
            f"(median; target ≤ 50 µs: {verdict})."]


# ---- SVG, by hand: the machine that ran the study need not have matplotlib.

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def svg_plot(path, title, xlabel, ylabel, series, logx=False, logy=True):
    """series: [(label, [(x, y), ...])]; writes a line plot with markers."""
    W, H, L, R, T, B = 760, 480, 80, 230, 40, 60
    pts = [p for _, s in series for p in s if p[0] > 0 or not logx]
    pts = [p for p in pts if p[1] > 0 or not logy]
    if not pts:
        return False
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    fy = (lambda v: math.log10(v)) if logy else (lambda v: v)
    xs = [fx(p[0]) for p in pts]
    ys = [fy(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad_x, pad_y = 0.05 * (x1 - x0), 0.08 * (y1 - y0)
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y
    sx = lambda v: L + (fx(v) - x0) / (x1 - x0) * (W - L - R)
    sy = lambda v: H - B - (fy(v) - y0) / (y1 - y0) * (H - T - B)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
         f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="black"/>',
         f'<text x="{L + (W - L - R) / 2}" y="{H - 15}" text-anchor="middle">{xlabel}</text>',
         f'<text x="18" y="{T + (H - T - B) / 2}" text-anchor="middle" transform="rotate(-90 18 {T + (H - T - B) / 2})">{ylabel}</text>']

    def ticks(lo, hi, log):
        if log:
            return [10.0 ** e for e in range(math.floor(lo), math.ceil(hi) + 1)]
        step = 10 ** math.floor(math.log10((hi - lo) / 4)) if hi > lo else 1
        return [lo + i * step for i in range(int((hi - lo) / step) + 1)]

    for v in ticks(x0, x1, logx):
        if x0 <= fx(v) <= x1:
            X = sx(v)
            o.append(f'<line x1="{X}" y1="{H - B}" x2="{X}" y2="{H - B + 5}" stroke="black"/>')
            o.append(f'<text x="{X}" y="{H - B + 18}" text-anchor="middle">{v:g}</text>')
    for v in ticks(y0, y1, logy):
        if y0 <= fy(v) <= y1:
            Y = sy(v)
            o.append(f'<line x1="{L - 5}" y1="{Y}" x2="{L}" y2="{Y}" stroke="black"/>')
            o.append(f'<line x1="{L}" y1="{Y}" x2="{W - R}" y2="{Y}" stroke="#eee"/>')
            o.append(f'<text x="{L - 8}" y="{Y + 4}" text-anchor="end">{v:g}</text>')
    for i, (label, s) in enumerate(series):
        c = COLOURS[i % len(COLOURS)]
        s = [p for p in sorted(s) if (p[0] > 0 or not logx) and (p[1] > 0 or not logy)]
        if not s:
            continue
        if len(s) > 1:
            d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
            o.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="1.5"/>')
        for x, y in s:
            o.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}"/>')
        ly = T + 14 + 18 * i
        o.append(f'<circle cx="{W - R + 15}" cy="{ly - 4}" r="4" fill="{c}"/>')
        o.append(f'<text x="{W - R + 25}" y="{ly}">{label}</text>')
    o.append("</svg>")
    Path(path).write_text("\n".join(o) + "\n")
    return True


def family(desc):
    """A descriptor without its search parameter: the series a sweep point belongs to."""
    parts = [p for p in desc.split("|") if not p.startswith(("nprobe=", "efSearch="))]
    return "|".join(parts)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: index_study.py RESULTS_DIR")
    folder = Path(sys.argv[1])
    data = {n: load(folder, n) for n in SWEEPS}
    if not any(data.values()):
        print(f"{folder}: no sweep results ({', '.join(n + '.json' for n in SWEEPS)})", file=sys.stderr)
        sys.exit(2)
    machine = (folder / "machine.txt").read_text() if (folder / "machine.txt").exists() else ""
    out = ["# Vector-index study", "", "Produced by `bench/gpu/index_study.sh`; every table is one "
           "`semskip index-bench` run on one data set, recall against exact float64 search of the "
           "same run.", "", "## Machine", "", "```", machine.rstrip(), "```", ""]

    titles = {
        "headline": "Headline: exact and approximate search at a large cache",
        "small": "A small cache: latency",
        "ann": "Approximate indexes: nprobe and efSearch sweeps (one trained index per family)",
        "real": "Real keys: the residual stream of the embedded model over the sample workloads",
    }
    for name in ["headline", "small", "ann", "real"]:
        rows = data[name]
        if not rows:
            out += [f"## {titles[name]}", "", f"No results (`{name}.json` missing or empty; see `{name}.log`).", ""]
            continue
        out += [f"## {titles[name]}", "", shape(rows) + ".", ""]
        ref = load(folder, f"{name}_reference")
        if name == "headline":
            out += headline_checks(rows, ref) + [""]
        if name == "small":
            out += small_checks(rows)
            if ref:
                out.append(f"Plain {ref[0]['dtype']} matmul here: {ms(ref[0]['matmul_s'])} ms, with top-k "
                           f"{ms(ref[0]['matmul_topk_s'])} ms.")
            out.append("")
        out += [table(rows, BENCH_COLS), ""]

    step = data["step"]
    if step:
        out += ["## A lookup's cost per engine step", "",
                f"Engine-step mode: queries start on `{step[0]['query_device']}` (where a run's keys "
                "come out of the model) and the results end there; each batch also fetches the best "
                f"match's cached value ({step[0]['value_dim']} bf16 elements) to that device. A CPU index "
                "pays the device→host copy of the queries and the host→device copy of ids and values "
                "inside the clock. Median per step (one batch = one decode step of that many tokens).", ""]
        sizes = sorted({r["n_keys"] for r in step})
        batches = sorted({r["n_queries"] for r in step})
        descs = list(dict.fromkeys(r["descriptor"] for r in step))
        cell = {(r["descriptor"], r["n_queries"], r["n_keys"]): r for r in step}
        head = ["index", "tokens/step"] + [f"N = {n}" for n in sizes]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for d in descs:
            for q in batches:
                vals = [cell.get((d, q, n)) for n in sizes]
                out.append(f"| {code(d)} | {q} | " + " | ".join(f"{1e3 * v['latency_p50_s']:.3f} ms" if v else "–" for v in vals) + " |")
        out.append("")
        series = []
        for d in descs:
            for q in batches:
                pts = [(n, 1e3 * cell[(d, q, n)]["latency_p50_s"]) for n in sizes if (d, q, n) in cell]
                series.append((f"{d.replace('|device=cuda', ' cuda')} q={q}"[:34], pts))
        if svg_plot(folder / "step_cost.svg", "Lookup cost per step against cache size", "cache size N (keys)",
                    "ms per step (median)", series, logx=True, logy=True):
            out += ["![lookup cost per step](step_cost.svg)", ""]

    # queries/s against recall@10: every approximate family (its sweep), exact points alone.
    series = {}
    for name in ["ann", "headline"]:
        for r in data[name] or []:
            key = f"{family(r['descriptor'])} (N={r['n_keys']})"
            series.setdefault(key, []).append((r["recall_at_k"], r["queries_per_s"]))
    if series and svg_plot(folder / "qps_recall.svg", "Queries/s against recall@10", "recall@10",
                           "queries/s", [(k[:34], v) for k, v in series.items()], logx=False, logy=True):
        out += ["## Queries/s against recall", "", "![queries/s against recall@10](qps_recall.svg)", ""]

    skipped = folder / "skipped.txt"
    if skipped.exists():
        out += ["## Skipped", "", "Sweeps the run's time limit left out (running the script again, with the "
                "builds kept, measures them):", "", "```", skipped.read_text().rstrip(), "```", ""]

    tests = folder / "gpu_index_tests.txt"
    if tests.exists():
        summary = [l for l in tests.read_text().splitlines()
                   if l.startswith(("[  PASSED", "[  FAILED", "[  SKIPPED ]", "exit status"))]
        out += ["## GPU backends against the reference", "",
                "`semskip_index_tests` on this machine, the CUDA and faiss-gpu cases of the conformance "
                "suite (every backend against a brute-force reference) and the reduced-precision tests:", "",
                "```", *summary[:40], "```", ""]

    kokkos = folder / "kokkos_cuda.txt"
    if kokkos.exists():
        out += ["## Kokkos with CUDA", "", "```", kokkos.read_text().rstrip(), "```", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
