#!/usr/bin/env python3
"""The index study's pipeline end to end on CPU (bench/gpu/index_study.sh with tiny sizes and an
existing binary): runs it, unpacks the tarball it writes, and checks what the integrator's run
relies on: every sweep's JSON with the rows asked for, the nprobe / efSearch sweeps built once
per family (equal build times, recall not falling as the search widens), the engine-step rows,
the markdown summary naming every row, and both plots as well-formed SVG."""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--semskip", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="index_study_", dir=a.workdir))
    work = out / "work"
    env = dict(os.environ, INDEX_STUDY_BUILD="0", INDEX_STUDY_SIZES="tiny", INDEX_STUDY_KOKKOS="0",
               SEMSKIP_BIN=a.semskip, THREADS="1", INDEX_STUDY_WORK=str(work))
    target = out / "target"
    p = subprocess.run(["bash", f"{a.source}/bench/gpu/index_study.sh", str(target)], env=env,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        print(p.stdout, p.stderr, sep="\n")
        raise SystemExit(f"index_study.sh exited with {p.returncode}")
    tgz = target / "index_study.tgz"
    # OUT_DIR receives one file: a job that returns a few files gets the whole study.
    expect(sorted(x.name for x in target.iterdir()) == ["index_study.tgz"],
           f"OUT_DIR holds {sorted(x.name for x in target.iterdir())}, not only index_study.tgz")
    unpacked = out / "unpacked"
    with tarfile.open(tgz) as t:
        t.extractall(unpacked)
    res = unpacked / "index_study"
    rows = {}
    for name in ["headline", "small", "ann", "step"]:
        f = res / f"{name}.json"
        expect(f.exists() and f.stat().st_size > 0, f"{name}.json missing or empty")
        rows[name] = json.loads(f.read_text()) if f.exists() and f.stat().st_size else []
        expect(len(rows[name]) > 0, f"{name}: no rows")
    descs = [r["descriptor"] for r in rows["headline"]]
    expect("torch:flat" in descs, "headline lacks torch:flat")
    for r in rows["headline"] + rows["small"]:
        if r["descriptor"] in ("torch:flat", "faiss:Flat", "kokkos:flat"):
            expect(r["recall_at_k"] == 1.0, f"{r['descriptor']}: exact backend recall {r['recall_at_k']}")
    ref = json.loads((res / "headline_reference.json").read_text())
    expect(len(ref) == 1 and ref[0]["n_keys"] == 3000 and ref[0]["matmul_s"] > 0,
           "headline_reference.json: one reference of the headline size")

    # Families of the ann sweep: one build each, recall not falling with nprobe / efSearch.
    families = {}
    for r in rows["ann"]:
        base = "|".join(p for p in r["descriptor"].split("|") if not p.startswith(("nprobe=", "efSearch=")))
        families.setdefault(base, []).append(r)
    swept = {b: rs for b, rs in families.items() if len(rs) > 1}
    if any(r["backend"] == "faiss" for r in rows["ann"]):
        expect(len(swept) >= 2, f"ann: expected swept FAISS families, got {sorted(families)}")
    for base, rs in swept.items():
        expect(len({r["build_s"] for r in rs}) == 1, f"{base}: built more than once ({[r['build_s'] for r in rs]})")
        rec = [r["recall_at_k"] for r in rs]
        expect(all(b >= a - 0.02 for a, b in zip(rec, rec[1:])), f"{base}: recall falls as the search widens {rec}")

    for r in rows["step"]:
        expect(r["query_device"] == "cpu" and r["value_dim"] == 16, f"step row {r['descriptor']}: engine-step fields")
    expect({r["n_keys"] for r in rows["step"]} == {512, 2048}, "step: cache sizes")
    expect({r["n_queries"] for r in rows["step"]} == {4, 16}, "step: batch sizes")

    md = (res / "index_study.md").read_text()
    for name in ["headline", "small", "ann"]:
        for r in rows[name]:
            cell = "`" + r["descriptor"].replace("|", "\\|") + "`"
            expect(cell in md, f"index_study.md lacks {r['descriptor']} (pipes escaped for the table)")
    expect("cores:" in md and "threads:" in md, "index_study.md lacks the machine")
    for svg in ["qps_recall.svg", "step_cost.svg"]:
        f = res / svg
        expect(f.exists(), f"{svg} missing")
        if f.exists():
            root = ET.parse(f).getroot()
            expect(root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}circle")) > 2,
                   f"{svg}: not a plot with points")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("index study pipeline: ok")


if __name__ == "__main__":
    main()
