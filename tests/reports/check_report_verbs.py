"""`semskip report show|compare|export|plot` and `semskip workload stats --json` on the reports
that write_sample_reports wrote, checked against h5py (an independent HDF5 reader), Python's
csv and json modules, and arithmetic done here.

usage: check_report_verbs.py SEMSKIP SAMPLES_DIR OUTPUT_DIR
"""

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

import h5py

SEMSKIP, SAMPLES, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
W1, W2, BENCH = f"{SAMPLES}/run_w1.h5", f"{SAMPLES}/run_w2.h5", f"{SAMPLES}/index_bench.h5"
A, B = f"{SAMPLES}/sample_a.h5", f"{SAMPLES}/sample_b.h5"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args, env=None, check=True):
    r = subprocess.run([SEMSKIP, *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


def h5_table(path, name):
    with h5py.File(path, "r") as f:
        data = f[name][()]
    return {c: [v.decode() if isinstance(v, bytes) else v.item() for v in data[c]] for c in data.dtype.names}


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def parse_cell(text, like):
    if isinstance(like, str):
        return text
    if isinstance(like, int):
        return int(text)
    return float(text)


class Show(unittest.TestCase):
    def test_csv_equals_h5py(self):
        for path, table in [(W1, "summary"), (W1, "per_layer"), (BENCH, "index/bench"), (A, "per_layer")]:
            out = run("report", "show", path, "--table", table, "--format", "csv").stdout
            got = list(csv.DictReader(io.StringIO(out)))
            want = h5_table(path, "/" + table)
            self.assertEqual(list(got[0].keys()), list(want.keys()))
            self.assertEqual(len(got), len(next(iter(want.values()))))
            for c, values in want.items():
                for i, v in enumerate(values):
                    self.assertTrue(same(parse_cell(got[i][c], v), v), (path, table, c, i, got[i][c], v))

    def test_csv_several_files_has_file_column(self):
        out = run("report", "show", A, B, "--table", "summary", "--format", "csv").stdout
        got = list(csv.reader(io.StringIO(out)))
        self.assertEqual(got[0][:2], ["file", "policy"])
        self.assertIn("t_total_ns", got[0])  # only in sample_b.h5: the union of the columns
        self.assertEqual([r[0] for r in got[1:]], [A] * 3 + [B] * 2)
        self.assertEqual(got[3][1], "residual:p=2,r=7,tau=0.95")  # quoted: it holds commas

    def test_csv_refuses_several_tables(self):
        r = run("report", "show", W1, "--format", "csv", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--format csv writes one table", r.stderr)

    def test_json_and_jsonl_equal_h5py(self):
        want = h5_table(W1, "/summary")
        doc = json.loads(run("report", "show", W1, "--format", "json").stdout)
        self.assertEqual(doc[0]["file"], W1)
        with h5py.File(W1, "r") as f:
            self.assertEqual(doc[0]["attributes"]["world_size"], int(f.attrs["world_size"]))
        rows = doc[0]["tables"]["/summary"]["rows"]
        lines = [json.loads(line) for line in
                 run("report", "show", W1, "--table", "summary", "--format", "jsonl").stdout.splitlines()]
        self.assertEqual(len(lines), len(rows))
        for i in range(len(rows)):
            self.assertEqual(lines[i]["table"], "/summary")
            for c, values in want.items():
                self.assertEqual(rows[i][c], values[i], (c, i))
                self.assertEqual(lines[i][c], values[i], (c, i))

    def test_text_units_and_columns(self):
        out = run("report", "show", W1, "--table", "summary", "--columns",
                  "policy,hit_rate,flops_full,t_skip_s,top1_agreement").stdout
        lines = out.splitlines()
        self.assertEqual(lines[2], "## /summary (9 rows)")
        header = lines[3].split()
        self.assertEqual(header, ["policy", "hit_rate", "[%]", "flops_full", "[TFLOP]", "t_skip_s", "[s]",
                                  "top1_agreement", "[%]"])
        want = h5_table(W1, "/summary")
        for i, line in enumerate(lines[4:]):
            cells = line.split()
            self.assertEqual(cells[0], want["policy"][i])
            self.assertEqual(cells[1], f"{100 * want['hit_rate'][i]:.2f}")
            self.assertEqual(cells[2], f"{want['flops_full'][i] / 1e12:.4g}")
            self.assertEqual(cells[3], f"{want['t_skip_s'][i]:.3f}")
        # Below one second every value of the column is in ms, nanoseconds included.
        out = run("report", "show", B, "--table", "summary", "--columns", "t_total_ns").stdout
        self.assertIn("t_total_ns [ms]", out)
        self.assertIn("2.000", out)
        self.assertIn("1.500", out)

    def test_markdown(self):
        out = run("report", "show", W1, "--table", "summary", "--columns", "policy,hit_rate",
                  "--format", "markdown").stdout
        lines = [l for l in out.splitlines() if l.startswith("|")]
        self.assertEqual(lines[0], "| policy | hit_rate [%] |")
        self.assertEqual(lines[1], "|---|---:|")
        self.assertEqual(len(lines), 2 + 9)

    def test_missing_column_is_named(self):
        r = run("report", "show", W1, "--table", "summary", "--columns", "policy,nope", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("has no column 'nope'", r.stderr)
        r = run("report", "show", W1, "--columns", "nope", check=False)
        self.assertIn("no table of", r.stderr)

    def test_columns_without_table_keep_the_tables_that_have_them(self):
        out = run("report", "show", W1, "--columns", "policy,layer,n_block_skip", "--format", "jsonl").stdout
        tables = {json.loads(l)["table"] for l in out.splitlines()}
        self.assertEqual(tables, {"/per_layer"})


class Compare(unittest.TestCase):
    def test_json_differences_overlaps_config(self):
        doc = json.loads(run("report", "compare", W1, W2, "--format", "json").stdout)
        a, b = h5_table(W1, "/summary"), h5_table(W2, "/summary")
        self.assertEqual(doc["labels"], ["run_w1.h5", "run_w2.h5"])
        rows = {(r["policy"], r["index"], r["column"]): r for r in doc["rows"]}
        for i, policy in enumerate(a["policy"]):
            key = (policy, a["index"][i])
            j = [k for k in range(len(b["policy"])) if (b["policy"][k], b["index"][k]) == key][0]
            for c in ("t_skip_s", "tokens_per_s", "n_ranks", "flops_saved_net"):
                r = rows[key + (c,)]
                self.assertEqual(r["values"]["run_w1.h5"], a[c][i])
                self.assertAlmostEqual(r["diff"]["run_w2.h5"], b[c][j] - a[c][i], places=12)
            r = rows[key + ("top1_agreement",)]
            overlap = a["top1_agreement_lo"][i] <= b["top1_agreement_hi"][j] and \
                b["top1_agreement_lo"][j] <= a["top1_agreement_hi"][i]
            self.assertEqual(r["ci_overlap"]["run_w2.h5"], overlap)
            self.assertNotIn(key + ("top1_agreement_lo",), rows)  # bounds go with their column
        # HNSW32 and Flat rows of the same policy are different configurations.
        self.assertIn(("residual:p=2,r=7,tau=0.95", "faiss:HNSW32", "hit_rate"), rows)
        diff = {d["config_key"]: d["values"] for d in doc["config_differences"]}
        with h5py.File(W1, "r") as f, h5py.File(W2, "r") as g:
            ca, cb = json.loads(f.attrs["config_json"]), json.loads(g.attrs["config_json"])
        self.assertEqual(set(diff), {k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)})
        self.assertEqual(diff["cache_mode"], {"run_w1.h5": "local", "run_w2.h5": "sharded"})

    def test_overlap_no_when_intervals_apart(self):
        doc = json.loads(run("report", "compare", A, W1, "--format", "json").stdout)
        rows = {(r["policy"], r["column"]): r for r in doc["rows"]}
        # none: [1, 1] against [1, 1] overlaps; static:k=2 is only in W1 (no interval pair).
        self.assertTrue(rows[("none", "top1_agreement")]["ci_overlap"]["run_w1.h5"])
        self.assertIsNone(rows[("static:k=2", "top1_agreement")]["ci_overlap"]["run_w1.h5"])
        self.assertIsNone(rows[("static:k=2", "top1_agreement")]["values"]["sample_a.h5"])

    def test_text_and_csv(self):
        out = run("report", "compare", W1, W2).stdout
        self.assertIn("run_w2.h5 − run_w1.h5", out)
        self.assertIn("95% CI overlap", out)
        self.assertIn("## config keys that differ", out)
        self.assertRegex(out, r"cache_mode\s+\"local\"\s+\"sharded\"")
        rows = list(csv.DictReader(io.StringIO(run("report", "compare", W1, W2, "--format", "csv").stdout)))
        r = [r for r in rows if r["policy"] == "none" and r["column"] == "t_skip_s"][0]
        self.assertAlmostEqual(float(r["diff_run_w2.h5"]), 1.1 - 2.0, places=12)

    def test_errors(self):
        r = run("report", "compare", W1, check=False)
        self.assertIn("at least two reports", r.stderr)
        r = run("report", "compare", W1, BENCH, check=False)
        self.assertIn("report '" + BENCH + "' has no table '/summary' to compare", r.stderr)


class Export(unittest.TestCase):
    def test_csv_files_equal_h5py(self):
        d = os.path.join(OUT, "export_w1")
        shutil.rmtree(d, ignore_errors=True)
        run("report", "export", W1, "--csv", d)
        self.assertEqual(sorted(os.listdir(d)), ["attributes.csv", "per_layer.csv", "summary.csv"])
        for name in ("summary", "per_layer"):
            want = h5_table(W1, "/" + name)
            with open(os.path.join(d, f"{name}.csv"), newline="") as f:
                got = list(csv.DictReader(f))
            self.assertEqual(list(got[0].keys()), list(want.keys()))
            for c, values in want.items():
                self.assertEqual([parse_cell(g[c], v) for g, v in zip(got, values)], values, (name, c))
        with open(os.path.join(d, "attributes.csv"), newline="") as f:
            attrs = list(csv.DictReader(f))
        with h5py.File(W1, "r") as h:
            want = {k: h.attrs[k] for k in h.attrs}
        root = {a["name"]: a for a in attrs if a["object"] == "/"}
        self.assertEqual(list(root), list(want))
        for k, v in want.items():
            text = v.decode() if isinstance(v, bytes) else str(v)
            self.assertEqual(root[k]["value"], text, k)
            self.assertEqual(root[k]["type"], "string" if isinstance(v, (str, bytes)) else "int64", k)

    def test_nested_table_and_table_attribute(self):
        d = os.path.join(OUT, "export_a")
        shutil.rmtree(d, ignore_errors=True)
        out = run("report", "export", A, "--csv", d).stdout
        self.assertIn("left out /hit_histogram", out)
        self.assertTrue(os.path.isfile(os.path.join(d, "index_build.csv")))
        with open(os.path.join(d, "attributes.csv"), newline="") as f:
            attrs = list(csv.DictReader(f))
        self.assertIn({"object": "/index/build", "name": "descriptor", "type": "string", "value": "faiss:Flat"}, attrs)

    def test_refuses_a_file(self):
        path = os.path.join(OUT, "a_file")
        with open(path, "w") as f:
            f.write("x")
        r = run("report", "export", W1, "--csv", path, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists and is not a directory", r.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "x")


class Plot(unittest.TestCase):
    def check_images(self, d, names):
        self.assertEqual(sorted(os.listdir(d)), sorted(f"{n}.{e}" for n in names for e in ("png", "svg")))
        for n in names:
            with open(os.path.join(d, f"{n}.png"), "rb") as f:
                data = f.read()
            self.assertEqual(data[:8], PNG_MAGIC, n)
            self.assertGreater(len(data), 10000, n)
            root = ET.parse(os.path.join(d, f"{n}.svg")).getroot()
            self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg", n)

    def test_every_figure(self):
        d = os.path.join(OUT, "plots_all")
        shutil.rmtree(d, ignore_errors=True)
        run("report", "plot", W1, W2, BENCH, "--out", d)
        self.check_images(d, ["frontier", "per_layer", "index_latency", "throughput", "scaling"])

    def test_what_a_report_allows(self):
        d = os.path.join(OUT, "plots_a")
        shutil.rmtree(d, ignore_errors=True)
        run("report", "plot", A, "--out", d)  # no per-layer counts, no times, one world size
        self.check_images(d, ["frontier"])
        d = os.path.join(OUT, "plots_bench")
        shutil.rmtree(d, ignore_errors=True)
        run("report", "plot", BENCH, "--out", d)
        self.check_images(d, ["index_latency"])

    def test_bad_input(self):
        d = os.path.join(OUT, "plots_bad")
        r = run("report", "plot", f"{SAMPLES}/not_a_report.h5", "--out", d, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is not a semskip report", r.stderr)
        r = run("report", "plot", f"{SAMPLES}/no_figures.h5", "--out", d, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nothing to plot", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        env = dict(os.environ, SEMSKIP_PLOT_SCRIPT=os.path.join(OUT, "no_such_script.py"))
        r = run("report", "plot", W1, "--out", d, env=env, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no_such_script.py' not found (set SEMSKIP_PLOT_SCRIPT", r.stderr)
        env = dict(os.environ, SEMSKIP_PYTHON=os.path.join(OUT, "no_such_python"))
        r = run("report", "plot", W1, "--out", d, env=env, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("needs Python 3 with matplotlib", r.stderr)

    def test_missing_matplotlib_is_named(self):
        # A Python that cannot import matplotlib: the script says so instead of a traceback.
        fake = os.path.join(OUT, "python_without_matplotlib")
        with open(fake, "w") as f:
            f.write(f"#!/bin/sh\nexec {sys.executable} -c \"import sys; sys.modules['matplotlib'] = None; "
                    f"sys.argv = sys.argv[1:]; exec(open(sys.argv[0]).read())\" \"$@\"\n")
        os.chmod(fake, 0o755)
        env = dict(os.environ, SEMSKIP_PYTHON=fake)
        r = run("report", "plot", W1, "--out", os.path.join(OUT, "plots_nompl"), env=env, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("needs matplotlib and h5py", r.stderr)
        self.assertNotIn("Traceback", r.stderr)


class WorkloadStatsJson(unittest.TestCase):
    def test_one_object_matching_the_text(self):
        args = ["workload", "stats", "synthetic:templates=4", "--max-requests", "20", "--redundancy-max", "0"]
        doc = json.loads(run(*args, "--json").stdout)
        text = run(*args).stdout
        fields = {l.split(":", 1)[0].strip(): l.split(":", 1)[1].split() for l in text.splitlines() if ":" in l}
        self.assertEqual(doc["n_requests"], 20)
        self.assertEqual(doc["n_requests"], int(fields["requests"][0]))
        self.assertEqual(doc["n_groups"], int(fields["groups"][0]))
        self.assertEqual(doc["workload"], text.splitlines()[0].split(": ", 1)[1])
        self.assertEqual(doc["prompt_tokens"]["n"], 20)
        self.assertLessEqual(doc["prompt_tokens"]["min"], doc["prompt_tokens"]["p50"])
        self.assertLessEqual(doc["prompt_tokens"]["p50"], doc["prompt_tokens"]["max"])
        self.assertIsNone(doc["redundancy"])


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v"])
