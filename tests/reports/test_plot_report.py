"""scripts/plot_report.py on the reports that write_sample_reports wrote: the PNGs exist and
are real images; missing columns and non-reports fail with a clear message.

usage: test_plot_report.py PLOT_SCRIPT SAMPLES_DIR OUTPUT_DIR
"""

import os
import subprocess
import sys
import unittest

SCRIPT, SAMPLES, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
A, B = f"{SAMPLES}/sample_a.h5", f"{SAMPLES}/sample_b.h5"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


class PlotReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(OUT, exist_ok=True)

    def assert_png(self, path):
        self.assertTrue(os.path.isfile(path), path)
        self.assertGreater(os.path.getsize(path), 1000, path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), PNG_MAGIC)

    def fresh(self, name):
        path = os.path.join(OUT, name)
        if os.path.exists(path):
            os.remove(path)
        return path

    def test_frontier_one_report_with_error_bars(self):
        out = self.fresh("frontier_a.png")
        r = run("frontier", A, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_png(out)

    def test_frontier_two_reports_other_columns(self):
        out = self.fresh("frontier_ab.png")
        r = run("frontier", A, B, "--x", "hit_rate", "--y", "top1_agreement", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_png(out)

    def test_scaling(self):
        out = self.fresh("scaling.png")
        r = run("scaling", A, B, "--y", "top1_agreement", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_png(out)

    def test_missing_column_is_named(self):
        out = self.fresh("never.png")
        r = run("frontier", A, "--x", "no_such_column", "-o", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no column 'no_such_column'", r.stderr)
        self.assertIn("sample_a.h5", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertFalse(os.path.exists(out))
        # t_total_ns exists only in sample_b.h5.
        r = run("scaling", A, B, "--y", "t_total_ns", "-o", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("sample_a.h5: /summary has no column 't_total_ns'", r.stderr)

    def test_non_report_and_missing_file(self):
        out = self.fresh("never.png")
        r = run("frontier", f"{SAMPLES}/not_a_report.h5", "-o", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a semskip report", r.stderr)
        r = run("frontier", f"{SAMPLES}/absent.h5", "-o", out)
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.h5: no such file", r.stderr)
        r = run("frontier", A, "-o", os.path.join(OUT, "no_such_dir", "x.png"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot write", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
