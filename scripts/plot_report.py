#!/usr/bin/python3
"""Plots from semskip HDF5 reports (schema: reports/SCHEMA.md).

  frontier  FLOPs saved against accuracy: one point per /summary row of every report, error
            bars from <y>_lo / <y>_hi when the report has them, each point labelled by policy.
  scaling   a /summary column against the number of ranks (root attribute world_size), one
            line per value of a grouping column (policy by default), one point per report.

Examples:
  plot_report.py frontier run.h5 -o frontier.png
  plot_report.py frontier a.h5 b.h5 --x flops_saved_gross --y top1_agreement -o f.png
  plot_report.py scaling n1.h5 n2.h5 n4.h5 --y tokens_per_s -o scaling.png

Needs h5py and matplotlib (the system python3 has them: /usr/bin/python3).
"""

import argparse
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")  # files only: no display on compute nodes or in tests
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

SCHEMA_ATTR = "schema_version"
SUMMARY = "/summary"


class ReportError(Exception):
    """A problem with the input files, reported as one line without a traceback."""


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class Summary:
    """The /summary table of one report, columns as Python lists."""

    def __init__(self, path):
        if not os.path.exists(path):
            raise ReportError(f"{path}: no such file")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise ReportError(f"{path}: not an HDF5 file ({e})") from None
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

    args = parser.parse_args(argv)
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
