"""Forward-pass throughput of the default architecture against a same-run matmul roofline.

    python -m benchmarks.bench_model [--batch-sizes 8 32 64] [--compile] [--quantize]

The roofline runs the same FP32 work as plain `torch.matmul` calls of the model's shapes (patch projection, QKV,
attention scores and mixing, output projection, FFN), so "fraction of roofline" is what the model achieves of what
this machine's BLAS does on the same matrices, measured in the same run.
"""

import argparse
import functools

import torch

from benchmarks.common import best_time, default_model
from genre_vit import GenreViTConfig


def forward_flops(config: GenreViTConfig) -> float:
    """Floating-point operations (2 per multiply-add) of one window's forward pass."""
    tokens, width, inner = config.sequence_length, config.hidden_size, config.intermediate_size
    heads, head_width = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    patch = config.num_patches * config.patch_size**2 * width
    per_block = tokens * width * 3 * width + 2 * heads * tokens * tokens * head_width + tokens * width * width
    per_block += 2 * tokens * width * inner
    return 2.0 * (patch + config.num_hidden_layers * per_block + width * config.num_labels)


def matmul_roofline(config: GenreViTConfig, batch: int):
    """A closure doing the model's matrix products with torch.matmul, same shapes and FP32."""
    tokens, width, inner = config.sequence_length, config.hidden_size, config.intermediate_size
    heads, head_width = config.num_attention_heads, width // config.num_attention_heads
    rows = batch * tokens
    patches = torch.randn(batch * config.num_patches, config.patch_size**2)
    patch_weight = torch.randn(config.patch_size**2, width)
    x, qkv_w, proj_w = torch.randn(rows, width), torch.randn(width, 3 * width), torch.randn(width, width)
    fc1_w, fc2_w, hidden = torch.randn(width, inner), torch.randn(inner, width), torch.randn(rows, inner)
    q = torch.randn(batch * heads, tokens, head_width)
    scores = torch.randn(batch * heads, tokens, tokens)

    def run():
        torch.matmul(patches, patch_weight)
        for _ in range(config.num_hidden_layers):
            torch.matmul(x, qkv_w)
            torch.bmm(q, q.transpose(1, 2))
            torch.bmm(scores, q)
            torch.matmul(x, proj_w)
            torch.matmul(x, fc1_w)
            torch.matmul(hidden, fc2_w)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    parser.add_argument("--quantize", action="store_true", help="also time int8 dynamic quantisation of Linear layers")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model, _ = default_model()
    flops = forward_flops(model.config)
    print(f"torch {torch.__version__}; {flops / 1e9:.2f} GFLOP per window forward")
    variants = {"eager": model}
    if args.compile:
        variants["compiled"] = torch.compile(model)
    if args.quantize:
        variants["int8-dynamic"] = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch_sizes:
            windows = torch.rand(batch, 1, 216, 144)
            roofline = matmul_roofline(model.config, batch)
            roofline()
            roofline_seconds = best_time(roofline, args.repeats)
            for name, variant in variants.items():
                with torch.inference_mode():
                    variant(input_values=windows)  # warm-up (and compilation)
                    seconds = best_time(functools.partial(variant, input_values=windows), args.repeats)
                rate = batch / seconds
                print(
                    f"threads {threads} batch {batch:3d} {name:13s}: {rate:6.1f} windows/s, "
                    f"{flops * rate / 1e9:6.1f} GFLOP/s; matmul roofline {flops * batch / roofline_seconds / 1e9:6.1f}"
                    f" GFLOP/s; {roofline_seconds / seconds:5.0%} of roofline"
                )


if __name__ == "__main__":
    main()
