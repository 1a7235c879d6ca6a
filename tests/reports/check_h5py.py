"""h5py, an independent HDF5 reader, reads what write_sample_reports wrote: exact values,
types and names. With a semskip binary as second argument, also checks that
`semskip report --json` gives the same tables and attributes as h5py.

usage: check_h5py.py SAMPLES_DIR [SEMSKIP]
"""

import json
import math
import subprocess
import sys
import unittest

import h5py
import numpy as np

SAMPLES = sys.argv[1] if len(sys.argv) > 1 else "."
SEMSKIP = sys.argv[2] if len(sys.argv) > 2 else None

ROOT_ATTRS = {
    "schema_version": 1,
    "semskip_version": "0.1.0",
    "git_revision": "0123456789ab",
    "created_utc": "2024-05-01T12:34:56Z",
    "command_line": "semskip run --policy none --policy 'static:layers=5+7'",
    "config_json": '{"chunk":128,"model":"tiny-dense"}',
    "world_size": 1,
    "hosts": '["node1"]',
    "gpus": "[]",
    "slurm_job_id": "",
    "slurm_array_job_id": "",
    "slurm_array_task_id": "",
    "torch_version": "unknown",
    "faiss_version": "none",
    "mpi_version": "unknown",
    "hdf5_version": "",
    "cuda_version": "none",
    "nccl_version": "none",
    "cpu_model": "",
    "torch_threads": 0,
    "omp_threads": 0,
    "gpu_memory_bytes": "[]",
    "user_metadata": "{}",
    "status": "complete",
}


def text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


class H5pyReads(unittest.TestCase):
    def setUp(self):
        self.f = h5py.File(f"{SAMPLES}/sample_a.h5", "r")

    def tearDown(self):
        self.f.close()

    def test_root_attributes(self):
        self.assertEqual(list(self.f.attrs.keys()), list(ROOT_ATTRS))  # creation order
        for name, want in ROOT_ATTRS.items():
            got = self.f.attrs[name]
            if isinstance(want, int):
                self.assertEqual(got.dtype, np.int64, name)
                self.assertEqual(int(got), want, name)
            else:
                self.assertIsInstance(got, str, name)  # variable-length UTF-8 comes back as str
                self.assertEqual(got, want, name)
        self.assertEqual(json.loads(self.f.attrs["config_json"]), {"chunk": 128, "model": "tiny-dense"})
        self.assertEqual(json.loads(self.f.attrs["hosts"]), ["node1"])

    def test_summary_table(self):
        s = self.f["/summary"]
        self.assertEqual(s.shape, (3,))
        self.assertEqual(
            s.dtype.names,
            ("policy", "hit_rate", "flops_saved_net", "top1_agreement", "top1_agreement_lo",
             "top1_agreement_hi", "n_tokens"))
        self.assertEqual(s.dtype["n_tokens"], np.dtype("<i8"))
        self.assertEqual(s.dtype["hit_rate"], np.dtype("<f8"))
        self.assertEqual(h5py.check_string_dtype(s.dtype["policy"]).encoding, "utf-8")
        self.assertEqual([text(p) for p in s["policy"]],
                         ["none", "static:layers=5+7", "residual:p=2,r=7,tau=0.95"])
        self.assertEqual(list(s["hit_rate"]), [0.0, 0.0, 0.41])
        self.assertEqual(list(s["flops_saved_net"]), [0.0, 0.176, -0.25])
        self.assertEqual(list(s["top1_agreement"]), [1.0, 0.62, 0.77])
        self.assertEqual(list(s["top1_agreement_lo"]), [1.0, 0.6, 0.75])
        self.assertEqual(list(s["top1_agreement_hi"]), [1.0, 0.64, 0.79])
        self.assertEqual(list(s["n_tokens"]), [4096, 4096, 4096])

    def test_unicode_and_large_integers(self):
        t = self.f["/per_layer"][()]
        self.assertEqual([text(v) for v in t["note"]], ["naïve", "日本"])
        self.assertEqual(list(t["executed_flops"]), [123456789012, 98765432109])

    def test_nested_table_attribute_and_array(self):
        b = self.f["/index/build"]
        self.assertIsInstance(self.f["/index"], h5py.Group)
        self.assertEqual(b.attrs["descriptor"], "faiss:Flat")
        self.assertEqual(list(b["t_build_ns"]), [1500])
        self.assertEqual(list(b["qps"]), [0.1])
        a = self.f["/hit_histogram"][()]
        self.assertEqual(a.dtype, np.float64)
        np.testing.assert_array_equal(a, np.array([[1.0, 2.5, 3.0], [4.0, 5.0, 6.5]]))

    def test_second_report_and_non_report(self):
        with h5py.File(f"{SAMPLES}/sample_b.h5", "r") as g:
            self.assertEqual(int(g.attrs["world_size"]), 2)
            self.assertEqual(g.attrs["hosts"], '["node1","node1"]')
            self.assertEqual(g.attrs["slurm_job_id"], "4242")
            self.assertEqual(list(g["/summary"]["t_total_ns"]), [2000000, 1500000])
        with h5py.File(f"{SAMPLES}/not_a_report.h5", "r") as g:
            self.assertNotIn("schema_version", g.attrs)


@unittest.skipIf(SEMSKIP is None, "no semskip binary given")
class CliJsonMatchesH5py(unittest.TestCase):
    def test_report_json(self):
        out = subprocess.run([SEMSKIP, "report", "--json", f"{SAMPLES}/sample_a.h5"], check=True,
                             capture_output=True, text=True).stdout
        doc = json.loads(out)
        self.assertEqual(len(doc), 1)
        doc = doc[0]
        with h5py.File(f"{SAMPLES}/sample_a.h5", "r") as f:
            self.assertEqual(doc["attributes"], {k: (int(v) if not isinstance(v, str) else v)
                                                 for k, v in f.attrs.items()})
            tables = [n for n in ("/summary", "/per_layer", "/index/build")]
            self.assertEqual(list(doc["tables"]), tables)
            for name in tables:
                data = f[name][()]
                cols = doc["tables"][name]["columns"]
                self.assertEqual(list(cols), list(data.dtype.names))
                self.assertEqual(doc["tables"][name]["n_rows"], len(data))
                for c in data.dtype.names:
                    want = [text(v) if isinstance(v, bytes) else v.item() for v in data[c]]
                    self.assertEqual(cols[c], want, f"{name}:{c}")
            self.assertEqual(doc["tables"]["/index/build"]["attributes"], {"descriptor": "faiss:Flat"})
            arr = doc["arrays"]["/hit_histogram"]
            self.assertEqual(arr["shape"], [2, 3])
            self.assertEqual(arr["values"], list(f["/hit_histogram"][()].ravel()))

    def test_compare_json(self):
        out = subprocess.run([SEMSKIP, "report", "--compare", "--json", f"{SAMPLES}/sample_a.h5",
                              f"{SAMPLES}/sample_b.h5"], check=True, capture_output=True, text=True).stdout
        doc = json.loads(out)
        self.assertEqual(doc["table"], "/summary")
        cols = doc["columns"]
        self.assertEqual(list(cols)[:2], ["file", "policy"])
        self.assertEqual(list(cols)[-1], "t_total_ns")
        self.assertEqual(len(cols["file"]), 5)
        self.assertEqual(cols["t_total_ns"], [None, None, None, 2000000, 1500000])
        self.assertEqual(cols["top1_agreement_lo"], [1.0, 0.6, 0.75, None, None])
        self.assertTrue(all(not (isinstance(v, float) and math.isnan(v)) for v in cols["hit_rate"]))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
