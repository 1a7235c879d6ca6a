"""`semskip env` prints the environment a report records: exit 0, every key in the JSON, the
LibTorch version the build was configured with, and the text form with the same keys.
usage: check_env.py <semskip> <Torch_VERSION from CMake>"""
import json
import subprocess
import sys

semskip, torch_version = sys.argv[1], sys.argv[2]
keys = ["semskip_version", "git_revision", "torch_version", "faiss_version", "mpi_version",
        "hdf5_version", "cuda_version", "nccl_version", "cpu_model", "torch_threads", "omp_threads",
        "gpus", "world_size", "hosts", "slurm_job_id", "slurm_array_job_id", "slurm_array_task_id"]

out = subprocess.run([semskip, "env", "--json"], check=True, capture_output=True, text=True).stdout
env = json.loads(out)
assert list(env) == keys, list(env)
# LibTorch reports e.g. "1.13.0" where CMake's package version may carry more parts.
assert env["torch_version"] == torch_version or torch_version.startswith(env["torch_version"] + "."), \
    (env["torch_version"], torch_version)
for k in ("faiss_version", "mpi_version", "hdf5_version", "cuda_version", "nccl_version", "cpu_model"):
    assert isinstance(env[k], str) and env[k], (k, env[k])
assert env["torch_threads"] >= 1 and env["omp_threads"] >= 1, env
assert isinstance(env["gpus"], list)
for g in env["gpus"]:
    assert set(g) == {"name", "memory_bytes"} and g["memory_bytes"] > 0, g
assert env["world_size"] == 1 and len(env["hosts"]) == 1, env
with open("/proc/cpuinfo") as f:
    models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
assert env["cpu_model"] == (models[0] if models else "unknown"), env["cpu_model"]

text = subprocess.run([semskip, "env"], check=True, capture_output=True, text=True).stdout
lines = text.splitlines()
assert [l.split()[0] for l in lines] == keys, lines
assert lines[2].split(None, 1)[1] == env["torch_version"], lines[2]
print("ok")
