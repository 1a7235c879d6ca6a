#!/usr/bin/env python3
"""Make a Hugging Face checkpoint with random weights from a config.json.

    python3 scripts/make_random_checkpoint.py --config CONFIG.json --out DIR [--seed N]

Builds the model with transformers' AutoModelForCausalLM.from_config (its own initialiser,
seeded), in fp32, and writes DIR/config.json and DIR/model.safetensors. Together with
make_reference_dump.py this makes a parity fixture for a shape no shipped fixture covers:

    python3 scripts/make_random_checkpoint.py --config my-config.json --out fixture
    python3 scripts/make_reference_dump.py --model fixture --out fixture

Needs PyTorch and transformers; nothing else.
"""

import argparse
import os
import sys


def main(argv):
    p = argparse.ArgumentParser(prog="make_random_checkpoint.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="a Hugging Face config.json")
    p.add_argument("--out", required=True, help="folder to write config.json and model.safetensors into")
    p.add_argument("--seed", type=int, default=0, help="seed of the weight initialiser")
    args = p.parse_args(argv)

    import torch
    import transformers

    if not os.path.isfile(args.config):
        raise SystemExit("%s: no such file" % args.config)
    try:
        config = transformers.AutoConfig.from_pretrained(args.config)
    except (ValueError, OSError) as e:
        raise SystemExit("%s: not a config transformers can read: %s" % (args.config, e))
    torch.manual_seed(args.seed)
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    n = sum(t.numel() for t in model.parameters())
    print("wrote %s (%d parameters, seed %d)" % (args.out, n, args.seed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
