#!/usr/bin/python3
"""Plots from semskip HDF5 reports (schema: reports/SCHEMA.md).

  frontier  FLOPs saved against accuracy: one point per /summary row of every report, error
            bars from <y>_lo / <y>_hi when the report has them, each point labelled by policy.
  scaling   a /summary column against the number of ranks (root attribute world_size), one
            line per value of a grouping column (policy by default), one point per report.
  all       every figure the reports allow, each as PNG and SVG in --out (what
            `semskip report plot` runs):
              frontier       net FLOPs saved % against top-1 agreement %, one marker set per
                             policy family, baselines (none, static, random, oracle) in grey,
                             the Pareto front marked, 95% intervals as error bars
              per_layer      skip rate (and cache hit rate where /per_layer has the counts)
                             per layer, one line per configuration
              index_latency  /index/bench: median lookup latency against stored keys, one line
                             per index descriptor, p90..p99 shaded
              throughput     tokens/s of the full model and with skipping (/summary t_full_s,
                             t_skip_s, n_tokens), per configuration
              scaling        several reports of different world_size: tokens/s and scaling
                             efficiency against ranks, one line per configuration

Examples:
  plot_report.py frontier run.h5 -o frontier.png
  plot_report.py frontier a.h5 b.h5 --x flops_saved_gross --y top1_agreement -o f.png
  plot_report.py scaling n1.h5 n2.h5 n4.h5 --y tokens_per_s -o scaling.png
  plot_report.py all run.h5 bench.h5 --out figures/

Needs h5py and matplotlib (the system python3 has them: /usr/bin/python3).
"""

import argparse
import os
import sys

try:
    import h5py
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on compute nodes or in tests
    import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
except ImportError as _e:  # a clear line instead of a traceback, and its own exit status
    print(f"plot_report.py: error: needs matplotlib and h5py in {sys.executable} ({_e})", file=sys.stderr)
    sys.exit(3)

SCHEMA_ATTR = "schema_version"
SUMMARY = "/summary"


class ReportError(Exception):
    """A problem with the input files, reported as one line without a traceback."""


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _open_h5(path):
    """The HDF5 file at `path`, open for reading, or a ReportError saying why not."""
    if not os.path.exists(path):
        raise ReportError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ReportError(f"{path}: not an HDF5 file ({e})") from None


class Summary:
    """The /summary table of one report, columns as Python lists."""

    def __init__(self, path):
        f = _open_h5(path)
        with f:
            if SCHEMA_ATTR not in f.attrs:
                raise ReportError(f"{path}: not a semskip report (no root attribute '{SCHEMA_ATTR}')")
            self.path = path
            self.attrs = {k: f.attrs[k] for k in f.attrs}
            if SUMMARY not in f:
                raise ReportError(f"{path}: no table '{SUMMARY}'")
            data = f[SUMMARY][()]
            if data.dtype.names is None:
                raise ReportError(f"{path}: '{SUMMARY}' is not a table (compound dataset)")
            self.columns = {
                name: [_text(v) if data.dtype[name].kind in "OSU" else v.item() for v in data[name]]
                for name in data.dtype.names
            }
        self.n_rows = len(data)

    def column(self, name, purpose):
        if name not in self.columns:
            have = ", ".join(self.columns) or "none"
            raise ReportError(f"{self.path}: {SUMMARY} has no column '{name}' ({purpose}); its columns: {have}")
        return self.columns[name]

    def attr(self, name):
        if name not in self.attrs:
            raise ReportError(f"{self.path}: no root attribute '{name}'")
        return self.attrs[name]


def plot_frontier(args):
    reports = [Summary(p) for p in args.reports]
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, rep in enumerate(reports):
        xs = rep.column(args.x, "--x")
        ys = rep.column(args.y, "--y")
        labels = rep.column(args.label, "--label") if args.label else [""] * rep.n_rows
        lo, hi = f"{args.y}_lo", f"{args.y}_hi"
        yerr = None
        if lo in rep.columns and hi in rep.columns:
            yerr = [[y - l for y, l in zip(ys, rep.columns[lo])], [h - y for y, h in zip(ys, rep.columns[hi])]]
        ax.errorbar(xs, ys, yerr=yerr, fmt="o", capsize=3, color=f"C{i}",
                    label=os.path.basename(rep.path) if len(reports) > 1 else None)
        for x, y, text in zip(xs, ys, labels):
            if text:
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(args.x)
    ax.set_ylabel(args.y)
    ax.set_title(args.title or f"{args.y} against {args.x}")
    ax.grid(True, alpha=0.3)
    if len(reports) > 1:
        ax.legend(fontsize=8)
    return fig


def plot_scaling(args):
    reports = [Summary(p) for p in args.reports]
    lines = {}  # group value -> [(world_size, y)]
    for rep in reports:
        world_size = int(rep.attr("world_size"))
        ys = rep.column(args.y, "--y")
        groups = rep.column(args.group, "--group") if args.group else ["all"] * rep.n_rows
        for g, y in zip(groups, ys):
            lines.setdefault(str(g), []).append((world_size, y))
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (group, points) in enumerate(lines.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=f"C{i % 10}", label=group)
    ax.set_xlabel("world_size (ranks)")
    ax.set_ylabel(args.y)
    sizes = sorted({p[0] for pts in lines.values() for p in pts})
    ax.set_xticks(sizes)
    ax.set_title(args.title or f"{args.y} against ranks")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, title=args.group or None)
    return fig


# ---------------------------------------------------------------- all: every figure the reports allow

BASELINE_FAMILIES = ("none", "static", "random", "oracle")
FAMILY_MARKERS = {"residual": "o", "plan": "s"}
EXTRA_MARKERS = "D^v<>Ph*X"


class Report:
    """Every table of one report, columns as lists (strings decoded), and its root attributes."""

    def __init__(self, path):
        f = _open_h5(path)
        self.path = path
        self.name = os.path.basename(path)
        self.tables = {}
        with f:
            if SCHEMA_ATTR not in f.attrs:
                raise ReportError(f"{path}: not a semskip report (no root attribute '{SCHEMA_ATTR}')")
            self.attrs = {k: f.attrs[k] for k in f.attrs}

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and obj.dtype.names is not None and obj.ndim == 1:
                    data = obj[()]
                    self.tables["/" + name] = {
                        col: [_text(v) if data.dtype[col].kind in "OSU" else v.item() for v in data[col]]
                        for col in data.dtype.names
                    }

            f.visititems(visit)

    def table(self, name, *columns):
        """The table if it has every one of `columns`, else None."""
        t = self.tables.get(name)
        if t is None or any(c not in t for c in columns):
            return None
        return t

    def world_size(self):
        return int(self.attrs.get("world_size", 1))


def family(policy):
    return policy.split(":", 1)[0]


def config_label(policy, index):
    return f"{policy} @ {index}" if index else policy


def rows(table):
    n = len(next(iter(table.values()))) if table else 0
    return [{k: v[i] for k, v in table.items()} for i in range(n)]


def repel_labels(ax, points, texts, fontsize=7):
    """Labels next to their points, pushed apart until their boxes do not overlap (a few
    hundred passes of pairwise separation in pixel space), each tied to its point by a line."""
    if not points:
        return
    fig = ax.figure
    fig.canvas.draw()
    to_px = ax.transData.transform
    anchors = [to_px(p) for p in points]
    pos = [[a[0] + 8, a[1] + 8] for a in anchors]
    sizes = []
    renderer = fig.canvas.get_renderer()
    for t in texts:
        probe = ax.text(0, 0, t, fontsize=fontsize)
        bb = probe.get_window_extent(renderer=renderer)
        sizes.append((bb.width + 4, bb.height + 2))
        probe.remove()
    box = ax.get_window_extent(renderer=renderer)
    for _ in range(300):
        moved = False
        for i in range(len(pos)):
            for j in range(i + 1, len(pos)):
                (xi, yi), (xj, yj) = pos[i], pos[j]
                (wi, hi), (wj, hj) = sizes[i], sizes[j]
                dx = (xi + wi / 2) - (xj + wj / 2)
                dy = (yi + hi / 2) - (yj + hj / 2)
                ox = (wi + wj) / 2 - abs(dx)
                oy = (hi + hj) / 2 - abs(dy)
                if ox > 0 and oy > 0:
                    moved = True
                    if oy < ox:  # separate along the cheaper axis
                        s = (oy / 2 + 0.5) * (1 if dy >= 0 else -1)
                        pos[i][1] += s
                        pos[j][1] -= s
                    else:
                        s = (ox / 2 + 0.5) * (1 if dx >= 0 else -1)
                        pos[i][0] += s
                        pos[j][0] -= s
        for i, (w, h) in enumerate(sizes):  # off every marker (a 14-pixel square around it)
            for ax_, ay_ in anchors:
                ox = min(pos[i][0] + w, ax_ + 7) - max(pos[i][0], ax_ - 7)
                oy = min(pos[i][1] + h, ay_ + 7) - max(pos[i][1], ay_ - 7)
                if ox > 0 and oy > 0:
                    moved = True
                    if oy < ox:
                        pos[i][1] += (oy + 0.5) * (1 if pos[i][1] + h / 2 >= ay_ else -1)
                    else:
                        pos[i][0] += (ox + 0.5) * (1 if pos[i][0] + w / 2 >= ax_ else -1)
        for i, (w, h) in enumerate(sizes):  # stay inside the axes
            pos[i][0] = min(max(pos[i][0], box.x0 + 2), box.x1 - w - 2)
            pos[i][1] = min(max(pos[i][1], box.y0 + 2), box.y1 - h - 2)
        if not moved:
            break
    inv = ax.transData.inverted()
    for p, (x, y), t in zip(points, pos, texts):
        ax.annotate(t, xy=p, xytext=inv.transform((x, y)), textcoords="data", fontsize=fontsize,
                    va="bottom", ha="left",
                    arrowprops=dict(arrowstyle="-", color="0.6", lw=0.6, shrinkA=0, shrinkB=3))


def pareto_front(points):
    """Indices of the points no other point beats in both coordinates (both maximised)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def fig_frontier(reports):
    usable = [r for r in reports if r.table(SUMMARY, "policy", "flops_saved_net", "top1_agreement")]
    if not usable:
        return None
    fig, ax = plt.subplots(figsize=(9, 6))
    several = len(usable) > 1
    families = []
    for r in usable:
        for p in r.tables[SUMMARY]["policy"]:
            if family(p) not in families:
                families.append(family(p))
    cache_families = [f for f in families if f not in BASELINE_FAMILIES]
    markers = {}
    extra = iter(EXTRA_MARKERS)
    for f in families:
        markers[f] = FAMILY_MARKERS.get(f) or {"none": "*", "static": "s", "random": "^", "oracle": "D"}.get(f) or next(extra, "o")
    colors = {f: f"C{i}" for i, f in enumerate(cache_families)}
    all_points, all_labels, point_families = [], [], []
    drawn = set()
    for k, r in enumerate(usable):
        t = r.tables[SUMMARY]
        for row in rows(t):
            fam = family(row["policy"])
            x, y = 100 * row["flops_saved_net"], 100 * row["top1_agreement"]
            yerr = None
            if "top1_agreement_lo" in row and "top1_agreement_hi" in row:
                yerr = [[max(0.0, y - 100 * row["top1_agreement_lo"])], [max(0.0, 100 * row["top1_agreement_hi"] - y)]]
            baseline = fam in BASELINE_FAMILIES
            color = "0.45" if baseline else colors[fam]
            name = f"{fam} (baseline)" if baseline else fam
            ax.errorbar([x], [y], yerr=yerr, fmt=markers[fam], ms=7 if not baseline else 6,
                        mfc="none" if baseline else color, mec=color, ecolor=color, capsize=3, lw=1,
                        label=None if name in drawn else name, zorder=3)
            drawn.add(name)
            all_points.append((x, y))
            point_families.append(fam)
            label = config_label(row["policy"], row.get("index", ""))
            all_labels.append(f"{label} [{r.name}]" if several else label)
    # The oracle is an upper bound that no real policy reaches, so it does not make the front.
    achievable = [i for i, f in enumerate(point_families) if f != "oracle"]
    front = [achievable[i] for i in pareto_front([all_points[i] for i in achievable])]
    if front:
        ax.plot([all_points[i][0] for i in front], [all_points[i][1] for i in front], "--", color="C3", lw=1,
                zorder=2, label="Pareto front (oracle excluded)")
        ax.scatter([all_points[i][0] for i in front], [all_points[i][1] for i in front], s=180, facecolors="none",
                   edgecolors="C3", lw=1.2, zorder=4)
    ax.axvline(0, color="0.8", lw=0.8, zorder=1)
    xs = [p[0] for p in all_points]
    ys = [p[1] for p in all_points]
    xpad = max(5.0, 0.15 * (max(xs) - min(xs)))
    ypad = max(3.0, 0.15 * (max(ys) - min(ys)))
    ax.set_xlim(min(xs) - xpad, max(xs) + 2 * xpad)
    ax.set_ylim(min(ys) - ypad, min(105.0, max(ys) + ypad))
    ax.set_xlabel("net FLOPs saved (%)  [1 − (executed + overhead) / full]")
    ax.set_ylabel("top-1 agreement with the full model (%)")
    ax.set_title("FLOPs–accuracy frontier (up and right is better; bars: 95% interval)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", title="policy family")
    repel_labels(ax, all_points, all_labels)
    return fig


def fig_per_layer(reports):
    usable = [r for r in reports if r.table("/per_layer", "layer", "n_block_run", "n_block_skip")]
    if not usable:
        return None
    has_hits = any(r.table("/per_layer", "cache_hits", "cache_lookups") for r in usable)
    fig, axes = plt.subplots(1, 2 if has_hits else 1, figsize=(12 if has_hits else 7, 4.8), squeeze=False)
    ax_skip = axes[0][0]
    ax_hit = axes[0][1] if has_hits else None
    i = 0
    for k, r in enumerate(usable):
        ls = ("-", "--", ":", "-.")[k % 4]  # one line style per report, so equal curves stay visible
        t = r.tables["/per_layer"]
        lines = {}
        for row in rows(t):
            key = config_label(row.get("policy", ""), row.get("index", ""))
            lines.setdefault(key, []).append(row)
        for key, rs in lines.items():
            rs.sort(key=lambda row: row["layer"])
            layers = [row["layer"] for row in rs]
            total = [row["n_block_run"] + row["n_block_skip"] for row in rs]
            skip = [100 * row["n_block_skip"] / n if n else 0.0 for row, n in zip(rs, total)]
            if not any(skip) and not any(row.get("n_mlp_skip", 0) for row in rs):
                continue  # the full model: nothing skipped
            label = f"{key} [{r.name}]" if len(usable) > 1 else key
            ax_skip.plot(layers, skip, marker="o", ms=4, ls=ls, color=f"C{i % 10}", label=label)
            if ax_hit is not None and "cache_hits" in rs[0]:
                hit = [100 * row["cache_hits"] / row["cache_lookups"] if row["cache_lookups"] else float("nan") for row in rs]
                ax_hit.plot(layers, hit, marker="o", ms=4, ls=ls, color=f"C{i % 10}", label=label)
            i += 1
    ax_skip.set_xlabel("decoder layer")
    ax_skip.set_ylabel("tokens skipping the block (%)")
    ax_skip.set_title("Skip rate per layer")
    ax_skip.grid(True, alpha=0.3)
    ax_skip.legend(fontsize=7, title="configuration")
    if ax_hit is not None:
        ax_hit.set_xlabel("decoder layer")
        ax_hit.set_ylabel("cache hits / lookups (%)")
        ax_hit.set_title("Cache hit rate per layer")
        ax_hit.grid(True, alpha=0.3)
        ax_hit.legend(fontsize=7, title="configuration")
    return fig


def fig_index_latency(reports):
    usable = [r for r in reports if r.table("/index/bench", "descriptor", "n_keys", "latency_p50_s")]
    if not usable:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    i = 0
    for r in usable:
        lines = {}
        for row in rows(r.tables["/index/bench"]):
            lines.setdefault(row["descriptor"], []).append(row)
        for desc, rs in lines.items():
            rs.sort(key=lambda row: row["n_keys"])
            n = [row["n_keys"] for row in rs]
            p50 = [1e3 * row["latency_p50_s"] for row in rs]
            label = f"{desc} [{r.name}]" if len(usable) > 1 else desc
            ax.plot(n, p50, marker="o", color=f"C{i % 10}", label=label)
            if "latency_p90_s" in rs[0] and "latency_p99_s" in rs[0]:
                ax.fill_between(n, [1e3 * row["latency_p90_s"] for row in rs], [1e3 * row["latency_p99_s"] for row in rs],
                                color=f"C{i % 10}", alpha=0.15, lw=0)
            i += 1
    batch = sorted({q for r in usable for q in r.tables["/index/bench"].get("n_queries", [])})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cache size (stored keys)")
    ax.set_ylabel("lookup latency per batch, median (ms)")
    suffix = f", batch of {', '.join(map(str, batch))} queries" if batch else ""
    ax.set_title(f"Index lookup latency by backend (shaded: p90–p99{suffix})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="index descriptor")
    return fig


def fig_throughput(reports):
    usable = [r for r in reports if r.table(SUMMARY, "policy", "n_tokens", "t_full_s", "t_skip_s")]
    if not usable:
        return None
    labels, full, skip = [], [], []
    for r in usable:
        for row in rows(r.tables[SUMMARY]):
            label = config_label(row["policy"], row.get("index", ""))
            labels.append(f"{label} [{r.name}]" if len(usable) > 1 else label)
            full.append(row["n_tokens"] / row["t_full_s"] if row["t_full_s"] > 0 else 0.0)
            skip.append(row["n_tokens"] / row["t_skip_s"] if row["t_skip_s"] > 0 else 0.0)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.8))
    ypos = list(range(len(labels)))
    h = 0.38
    ax.barh([y - h / 2 for y in ypos], full, height=h, color="0.6", label="full model")
    ax.barh([y + h / 2 for y in ypos], skip, height=h, color="C0", label="with skipping")
    for y, f, s in zip(ypos, full, skip):
        if f > 0:
            ax.text(max(f, s) * 1.01, y, f"×{s / f:.2f}", va="center", fontsize=7)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(full + skip) * 1.15)
    ax.set_xlabel("throughput (tokens/s)")
    ax.set_title("Tokens/s with and without skipping (×: speed-up)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def fig_scaling(reports):
    usable = [r for r in reports if r.table(SUMMARY, "policy", "n_tokens", "t_skip_s")]
    if len({r.world_size() for r in usable}) < 2:
        return None
    lines = {}
    for r in usable:
        for row in rows(r.tables[SUMMARY]):
            tps = row["tokens_per_s"] if "tokens_per_s" in row else (row["n_tokens"] / row["t_skip_s"] if row["t_skip_s"] > 0 else 0.0)
            lines.setdefault(config_label(row["policy"], row.get("index", "")), {})[r.world_size()] = tps
    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(12, 4.8))
    sizes = sorted({w for pts in lines.values() for w in pts})
    for i, (key, pts) in enumerate(lines.items()):
        ws = sorted(pts)
        ax_t.plot(ws, [pts[w] for w in ws], marker="o", color=f"C{i % 10}", label=key)
        w0 = ws[0]
        if pts[w0] > 0:
            ax_e.plot(ws, [100 * (pts[w] / pts[w0]) / (w / w0) for w in ws], marker="o", color=f"C{i % 10}", label=key)
    ax_t.set_xlabel("ranks (world_size)")
    ax_t.set_ylabel("throughput with skipping (tokens/s)")
    ax_t.set_title("Throughput against ranks")
    ax_e.axhline(100, color="0.5", lw=0.8, ls="--")
    ax_e.set_xlabel("ranks (world_size)")
    ax_e.set_ylabel("scaling efficiency (%)")
    ax_e.set_title("Scaling efficiency (speed-up ÷ rank ratio)")
    ax_e.set_ylim(0, max(110.0, ax_e.get_ylim()[1]))
    for ax in (ax_t, ax_e):
        ax.set_xticks(sizes)
        ax.grid(True, alpha=0.3)
    ax_t.legend(fontsize=7, title="configuration")
    return fig


FIGURES = [("frontier", fig_frontier), ("per_layer", fig_per_layer), ("index_latency", fig_index_latency),
           ("throughput", fig_throughput), ("scaling", fig_scaling)]


def plot_all(args):
    reports = [Report(p) for p in args.reports]
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ReportError(f"{args.out} exists and is not a directory")
    os.makedirs(args.out, exist_ok=True)
    written = []
    for name, make in FIGURES:
        fig = make(reports)
        if fig is None:
            continue
        try:
            fig.tight_layout()
            for ext in ("png", "svg"):
                path = os.path.join(args.out, f"{name}.{ext}")
                try:
                    fig.savefig(path, dpi=130)
                except OSError as e:
                    raise ReportError(f"cannot write {path}: {e.strerror or e}") from None
                written.append(path)
        finally:
            plt.close(fig)
    if not written:
        raise ReportError("nothing to plot: no report has a /summary with policy, flops_saved_net and top1_agreement, "
                          "a /per_layer with layer, n_block_run and n_block_skip, an /index/bench, or "
                          "t_full_s / t_skip_s; see reports/SCHEMA.md")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plot_report.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    fr = sub.add_parser("frontier", help="FLOPs saved against accuracy, one point per /summary row")
    fr.add_argument("reports", nargs="+", help="semskip report files (.h5)")
    fr.add_argument("-o", "--output", required=True, help="PNG file to write")
    fr.add_argument("--x", default="flops_saved_net", help="x column (default: flops_saved_net)")
    fr.add_argument("--y", default="top1_agreement", help="y column (default: top1_agreement)")
    fr.add_argument("--label", default="policy", help="column that labels the points ('' for none)")
    fr.add_argument("--title", default="")
    fr.set_defaults(plot=plot_frontier)

    sc = sub.add_parser("scaling", help="a /summary column against world_size, one line per group")
    sc.add_argument("reports", nargs="+", help="semskip report files (.h5), typically one per rank count")
    sc.add_argument("-o", "--output", required=True, help="PNG file to write")
    sc.add_argument("--y", required=True, help="y column of /summary")
    sc.add_argument("--group", default="policy", help="column whose values make the lines ('' for one line)")
    sc.add_argument("--title", default="")
    sc.set_defaults(plot=plot_scaling)

    al = sub.add_parser("all", help="every figure the reports allow, PNG and SVG, into --out")
    al.add_argument("reports", nargs="+", help="semskip report files (.h5)")
    al.add_argument("--out", required=True, help="directory for the figures (created if absent)")

    args = parser.parse_args(argv)
    if args.command == "all":
        try:
            for path in plot_all(args):
                print(path)
        except ReportError as e:
            print(f"plot_report.py all: error: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        fig = args.plot(args)
        fig.tight_layout()
        try:
            fig.savefig(args.output, dpi=120)
        except OSError as e:
            raise ReportError(f"cannot write {args.output}: {e.strerror or e}") from None
        finally:
            plt.close(fig)
    except ReportError as e:
        print(f"plot_report.py {args.command}: error: {e}", file=sys.stderr)
        return 2
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
