"""Every table and array of a report is chunked and compressed (gzip + shuffle), and the values
read back by h5py (an independent HDF5 reader) are the ones written.
usage: check_compression.py <write_compressed_report> <scratch dir>"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

writer, scratch = sys.argv[1], sys.argv[2]
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
subprocess.run([writer, scratch], check=True)
path = os.path.join(scratch, "compressed.h5")

with h5py.File(path, "r") as f:
    assert f.attrs["status"] == "complete", f.attrs["status"]
    for name in ("big", "small", "matrix"):
        d = f[name]
        assert d.compression == "gzip", (name, d.compression)
        assert d.shuffle, name
        assert d.chunks is not None, name
    big = f["big"]
    assert big.chunks[0] < big.shape[0], big.chunks  # a growing table is cut into several chunks
    n = 50000
    i = np.arange(n)
    rows = big[()]
    assert rows.shape == (n,)
    np.testing.assert_array_equal(rows["id"], i * 37 % 1000)
    np.testing.assert_array_equal(rows["x"], i / 8.0)
    assert [s.decode() for s in rows["name"]] == ["row%d" % (k % 13) for k in range(n)]
    np.testing.assert_array_equal(f["small"]["v"], [1, 2, 3])
    assert f["empty"].shape == (0,)
    m = f["matrix"][()]
    assert m.shape == (300, 7)
    np.testing.assert_array_equal(m.reshape(-1), (np.arange(2100) % 11) * 0.5)
    # Compression pays: the id column alone would take 400 kB uncompressed.
    assert big.id.get_storage_size() < n * (8 + 8 + 16), big.id.get_storage_size()
print("ok")
