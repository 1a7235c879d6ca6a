"""What the transformers reference scripts share: a model of a config.json's shape with random
weights (seed 0) on the GPU, for greedy generation with no end token.

Imported by hf_engine_bench.py and hf_serve_reference.py from this folder; torch and
transformers are imported when it is called, so the scripts' --help works without them.
"""


def random_model(model_dir, dtype_name, attn):
    """(model, config, torch, transformers) for model_dir/config.json in bf16 | fp16 | fp32."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype_name]
    cfg = AutoConfig.from_pretrained(model_dir)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=dtype, attn_implementation=attn)
    model.eval()
    gc = model.generation_config
    gc.eos_token_id = None
    gc.pad_token_id = 0
    gc.do_sample = False
    return model, cfg, torch, transformers
