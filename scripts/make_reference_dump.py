#!/usr/bin/env python3
"""Make a reference dump for `semskip parity` with Hugging Face transformers.

    python3 scripts/make_reference_dump.py --model DIR --out DIR [options]

Loads the Hugging Face checkpoint in --model with transformers (eager attention, fp32 by
default) and writes two files into --out, in the layout of tests/data/parity/<name>/:

reference.safetensors, for each sequence i = 0, 1, ...:
  ids_i            int64 [T]           the input token ids
  logits_i         fp32  [T, vocab]    the logits of one forward over ids_i
  resid_post_i     fp32  [L, T, d]     the residual stream after each decoder layer
                                       (before the final norm)
  greedy_i         int64 [G]           G greedy tokens after ids_i (argmax of a full forward
                                       per step; EOS does not stop it)
  router_logits_i  fp32  [M, T, E]     MoE models only: the router logits (before the
                                       softmax) of each of the M MoE layers, in layer order
                                       (M = L unless the model mixes dense and MoE layers)
  topk_experts_i   int64 [M, T, k]     MoE models only: each token's k experts per MoE
                                       layer, by descending router logit

reference.json: the dump's name, for MoE models the MoE layers' indices ("moe_layers"), the model folder's config layout ("classic": rope_theta,
torch_dtype; "new": rope_parameters, dtype), the config as transformers resolved it
("hf_config"), and per sequence the FLOP count of one forward under
torch.utils.flop_counter.FlopCounterMode ("flop_counter_total", "flop_counter_by_op"). For
MoE models "flop_counter_sees_routed_experts" says whether that counter saw the routed
experts' matmuls (it does not when transformers runs them through kernels the counter does
not count); `semskip parity` then leaves them out of its own count before comparing.

Sequences: --ids (repeatable, comma-separated ids), --ids-from (the ids_i of an existing
reference.safetensors, to redo a dump with another transformers version), or random ids
drawn uniformly from the vocabulary with --seed, one sequence per --lengths entry (13 and 29
by default, like the shipped fixtures).

Needs PyTorch and transformers (CPU or GPU); nothing else. Check the result with
    semskip parity --model DIR --reference OUT/reference.safetensors
"""

import argparse
import json
import os
import re
import struct
import sys

DEFAULT_LENGTHS = "13,29"
DEFAULT_GREEDY = 16


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="make_reference_dump.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="example (redo a shipped fixture's dump, then check a build against it):\n"
        "  python3 scripts/make_reference_dump.py --model tests/data/parity/llama-gqa --out dump \\\n"
        "      --ids-from tests/data/parity/llama-gqa/reference.safetensors\n"
        "  semskip parity --model tests/data/parity/llama-gqa --reference dump/reference.safetensors",
    )
    p.add_argument("--model", required=True, help="Hugging Face model folder (config.json + *.safetensors)")
    p.add_argument("--out", required=True, help="folder to write reference.safetensors and reference.json into")
    p.add_argument("--name", default=None, help="name recorded in reference.json (default: the model folder's name)")
    p.add_argument("--ids", action="append", default=[], metavar="ID,ID,...",
                   help="one sequence of token ids; repeat for more sequences (overrides --lengths)")
    p.add_argument("--ids-from", default=None, metavar="SAFETENSORS",
                   help="take the sequences ids_0, ids_1, ... of an existing reference.safetensors")
    p.add_argument("--lengths", default=DEFAULT_LENGTHS,
                   help="lengths of the random sequences, comma-separated (default: %(default)s)")
    p.add_argument("--seed", type=int, default=123,
                   help="seed of the random sequences (default: %(default)s, which gives the shipped fixtures' ids)")
    p.add_argument("--greedy-tokens", type=int, default=DEFAULT_GREEDY,
                   help="greedy tokens generated after each sequence (default: %(default)s)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="dtype the reference is computed in; tensors are stored as fp32 (default: %(default)s)")
    p.add_argument("--device", default=None,
                   help="torch device, e.g. cpu or cuda:0 (default: cuda when available, else cpu)")
    args = p.parse_args(argv)
    if args.ids and args.ids_from:
        p.error("give --ids or --ids-from, not both")
    if args.greedy_tokens < 0:
        p.error("--greedy-tokens must be >= 0")
    return args


# --- safetensors (the format: an 8-byte little-endian header length, a JSON header
# {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor bytes). The ids of an
# existing dump are read by hand, so that --ids-from needs no extra package.

def read_safetensors_ids(path):
    """The int64 tensors ids_0, ids_1, ... of a safetensors file, as lists of ints."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    seqs = []
    i = 0
    while "ids_%d" % i in header:
        meta = header["ids_%d" % i]
        if meta["dtype"] != "I64" or len(meta["shape"]) != 1:
            raise SystemExit("%s: ids_%d must be int64 [T], is %s %s" % (path, i, meta["dtype"], meta["shape"]))
        begin, end = meta["data_offsets"]
        count = meta["shape"][0]
        seqs.append(list(struct.unpack("<%dq" % count, data[begin:end])))
        i += 1
    if not seqs:
        raise SystemExit("%s: no ids_0 tensor" % path)
    return seqs


def write_safetensors(path, tensors):
    """tensors: name -> torch tensor (fp32 or int64, on any device); written with the
    safetensors package (a dependency of transformers)."""
    import torch
    from safetensors.torch import save_file

    out = {}
    for name, t in tensors.items():
        if t.dtype not in (torch.float32, torch.int64):
            raise ValueError("%s: dtype %s is not stored" % (name, t.dtype))
        out[name] = t.detach().to("cpu").contiguous()
    tmp = path + ".tmp"
    save_file(out, tmp)
    os.replace(tmp, path)


# --- the model

def load_model(model_dir, dtype, device):
    import torch
    import transformers

    major = int(re.match(r"(\d+)", transformers.__version__).group(1))
    minor = int(re.match(r"\d+\.(\d+)", transformers.__version__).group(1))
    kwargs = {"attn_implementation": "eager"}  # the dense-attention FLOP convention
    # transformers >= 4.56 takes `dtype`; older ones `torch_dtype`.
    if (major, minor) >= (4, 56):
        kwargs["dtype"] = dtype
    else:
        kwargs["torch_dtype"] = dtype
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.to(device)
    model.eval()
    return model


def decoder_layers(model):
    """The model's decoder layers (a ModuleList of num_hidden_layers blocks)."""
    import torch

    n = model.config.num_hidden_layers
    base = getattr(model, "model", None)
    if base is not None and isinstance(getattr(base, "layers", None), torch.nn.ModuleList) and len(base.layers) == n:
        return list(base.layers)
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return list(module)
    raise SystemExit("cannot find the %d decoder layers of %s" % (n, type(model).__name__))


def moe_gate(layer):
    """The router of a decoder layer's sparse MoE block (a module with weight [E, d]), or None."""
    for block_name in ("mlp", "block_sparse_moe"):
        block = getattr(layer, block_name, None)
        gate = getattr(block, "gate", None) if block is not None else None
        if gate is not None and getattr(gate, "weight", None) is not None and hasattr(block, "experts"):
            return gate
    return None


def n_experts_per_tok(config):
    for key in ("num_experts_per_tok", "top_k", "moe_topk"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise SystemExit("the config names no experts per token (num_experts_per_tok)")


def forward_with_records(model, layers, gates, ids):
    """One forward over ids [T]: logits [T, V], resid_post [L, T, d], router logits [L, T, E]."""
    import torch

    resid = [None] * len(layers)
    router = [None] * len(layers)
    handles = []

    def record_resid(l):
        def hook(module, inputs, output):
            h = output[0] if isinstance(output, (tuple, list)) else output
            resid[l] = h[0].detach().float()
        return hook

    def record_router(l, gate):
        # The logits from the gate's input and weight, whatever the router module returns
        # (some return softmax scores or (logits, scores, indices)).
        def hook(module, inputs):
            if not inputs:
                raise SystemExit("the MoE router of layer %d is called without a positional input" % l)
            x = inputs[0]
            x = x.reshape(-1, x.shape[-1])
            bias = getattr(gate, "bias", None)
            router[l] = torch.nn.functional.linear(x, gate.weight, bias).detach().float()
        return hook

    for l, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(record_resid(l)))
        if gates[l] is not None:
            handles.append(gates[l].register_forward_pre_hook(record_router(l, gates[l])))
    try:
        with torch.no_grad():
            logits = model(input_ids=ids.unsqueeze(0), use_cache=False).logits[0].float()
    finally:
        for h in handles:
            h.remove()
    if any(r is None for r in resid):
        raise SystemExit("a decoder layer's output was not recorded")
    return logits, torch.stack(resid), router


def greedy(model, ids, n_tokens):
    """n_tokens argmax tokens after ids, each from a full forward over the sequence so far."""
    import torch

    seq = ids.clone()
    out = []
    with torch.no_grad():
        for _ in range(n_tokens):
            logits = model(input_ids=seq.unsqueeze(0), use_cache=False).logits[0, -1]
            nxt = int(torch.argmax(logits).item())
            out.append(nxt)
            seq = torch.cat([seq, torch.tensor([nxt], dtype=seq.dtype, device=seq.device)])
    return torch.tensor(out, dtype=torch.int64)


def count_flops(model, ids):
    """FlopCounterMode over one forward: total, by op, and the routed experts' share."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(input_ids=ids.unsqueeze(0), use_cache=False)
    counts = counter.get_flop_counts()
    by_op = {str(op): int(n) for op, n in counts.get("Global", {}).items() if int(n) != 0}
    # Module names: ...mlp.experts (one module holding every expert) or ...experts.<e> (a list).
    experts = 0
    containers = {k for k in counts if re.search(r"(^|\.)experts$", k)}
    for key, ops in counts.items():
        m = re.match(r"(.*(?:^|\.)experts)\.\d+$", key)
        if key in containers or (m and m.group(1) not in containers):
            experts += sum(int(n) for n in ops.values())
    return int(counter.get_total_flops()), by_op, experts


def config_style(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    return "new" if "rope_parameters" in cfg or "dtype" in cfg else "classic"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        raise SystemExit("%s: no config.json (not a Hugging Face model folder)" % args.model)
    if args.ids:
        try:
            sequences = [[int(x) for x in s.split(",") if x.strip()] for s in args.ids]
        except ValueError:
            raise SystemExit("--ids: comma-separated integers expected")
    elif args.ids_from:
        sequences = read_safetensors_ids(args.ids_from)
    else:
        try:
            lengths = [int(x) for x in args.lengths.split(",")]
        except ValueError:
            raise SystemExit("--lengths: comma-separated integers expected")
        if any(n < 1 for n in lengths):
            raise SystemExit("--lengths: every length must be >= 1")
        sequences = None  # drawn once the vocabulary size is known
    if sequences is not None and any(len(s) == 0 for s in sequences):
        raise SystemExit("every sequence needs at least one id")

    try:
        import torch
        import transformers
    except ImportError as e:
        raise SystemExit("make_reference_dump.py needs PyTorch and transformers (%s)" % e)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        # Full-precision matmuls: TF32 would move the reference by ~1e-3.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    model = load_model(args.model, dtype, device)
    config = model.config
    vocab = config.vocab_size

    if sequences is None:
        gen = torch.Generator().manual_seed(args.seed)
        sequences = [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in lengths]
    for s in sequences:
        bad = [x for x in s if not 0 <= x < vocab]
        if bad:
            raise SystemExit("token id %d outside the vocabulary of %d" % (bad[0], vocab))

    layers = decoder_layers(model)
    gates = [moe_gate(layer) for layer in layers]
    moe_layers = [l for l, g in enumerate(gates) if g is not None]
    k = n_experts_per_tok(config) if moe_layers else 0

    tensors = {}
    flop_entries = []
    sees_experts = None
    for i, seq in enumerate(sequences):
        ids = torch.tensor(seq, dtype=torch.int64, device=device)
        logits, resid, router = forward_with_records(model, layers, gates, ids)
        tensors["ids_%d" % i] = ids
        tensors["logits_%d" % i] = logits
        tensors["resid_post_%d" % i] = resid
        if args.greedy_tokens > 0:
            tensors["greedy_%d" % i] = greedy(model, ids, args.greedy_tokens)
        if moe_layers:
            r = torch.stack([router[l] for l in moe_layers])  # [M, T, E]
            tensors["router_logits_%d" % i] = r
            tensors["topk_experts_%d" % i] = torch.topk(r, k, dim=-1, sorted=True).indices.to(torch.int64)
        total, by_op, experts = count_flops(model, ids)
        flop_entries.append({"len": len(seq), "flop_counter_total": total, "flop_counter_by_op": by_op})
        seen = experts > 0
        if sees_experts is not None and seen != sees_experts:
            raise SystemExit("the FLOP counter saw the routed experts for some sequences only")
        sees_experts = seen
        print("sequence %d: %d ids, %d FLOPs under FlopCounterMode" % (i, len(seq), total), file=sys.stderr)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "reference.safetensors"), tensors)
    meta = {
        "name": args.name or os.path.basename(os.path.normpath(args.model)),
        "config_style": config_style(args.model),
        "made_with": {"torch": torch.__version__, "transformers": transformers.__version__,
                      "dtype": args.dtype, "device": str(device), "attn_implementation": "eager"},
        "sequences": flop_entries,
        "hf_config": json.loads(config.to_json_string(use_diff=True)),
    }
    if moe_layers:
        meta["moe_layers"] = moe_layers
        meta["flop_counter_sees_routed_experts"] = bool(sees_experts)
    json_path = os.path.join(args.out, "reference.json")
    with open(json_path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("wrote %s and %s" % (os.path.join(args.out, "reference.safetensors"), json_path), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
