#!/usr/bin/env python3
"""PyTorch's side of the attention benchmark (tests/bench/cuda/attention_bench.cpp):
scaled_dot_product_attention in bf16 on the GPU, causal (the default) or full, forward and
backward, timed with CUDA events (median of REPS after warm-up), the same FLOP convention
(4 B H T^2 D forward, halved when causal; backward 2.5 times the forward).

--backend picks PyTorch's kernel: default lets PyTorch choose (FlashAttention-2 on Hopper),
flash, cudnn (cuDNN's fused SDPA) or efficient (memory-efficient attention) force one through
torch.nn.attention.sdpa_kernel. A backend that cannot run the shape prints "unsupported" and
exits 0; one that refuses grouped-query attention (KV != H) runs on K/V heads repeated H/KV
times, marked "(kv repeated)".

usage: bench_attention_torch.py B T H KV D [REPS] [--mask causal|full]
                                [--backend default|flash|cudnn|efficient]
prints: "torch-attention B<B> T<T> H<H>/<KV> D<D> <mask> <backend>: fwd <ms> ms <TFLOP/s> TFLOP/s
         bwd <ms> ms <TFLOP/s> TFLOP/s" (one line), or
        "torch-attention B<B> T<T> H<H>/<KV> D<D> <mask> <backend>: unsupported (<reason>)" """
import argparse
import contextlib
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

BACKENDS = {"flash": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION", "efficient": "EFFICIENT_ATTENTION"}


def median_ms(call, reps):
    # Half a second of calls first: an idle GPU holds its clocks low.
    warm_until = time.perf_counter() + 0.5
    while time.perf_counter() < warm_until:
        for _ in range(10):
            call()
        torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def backend_context(backend):
    """The sdpa_kernel context that forces the backend; a null context for default."""
    if backend == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    member = getattr(SDPBackend, BACKENDS[backend], None)
    if member is None:
        raise RuntimeError(f"this PyTorch has no SDPBackend.{BACKENDS[backend]}")
    return sdpa_kernel(member)


def short_reason(error, caught):
    """One line of why: PyTorch's warning about the refused kernel when it gave one, else the error."""
    texts = [str(w.message) for w in caught if "not used because" not in str(w.message)]
    text = texts[0] if texts else (str(error) or type(error).__name__)
    text = " ".join(text.split(" (Triggered internally")[0].split())
    return text if len(text) <= 120 else text[:117] + "..."


def main():
    parser = argparse.ArgumentParser(description="PyTorch scaled_dot_product_attention benchmark")
    for name in ("B", "T", "H", "KV", "D"):
        parser.add_argument(name, type=int)
    parser.add_argument("REPS", type=int, nargs="?", default=20)
    parser.add_argument("--mask", choices=("causal", "full"), default="causal")
    parser.add_argument("--backend", choices=("default", *BACKENDS), default="default")
    args = parser.parse_args()
    b, t, h, kv, d, reps = args.B, args.T, args.H, args.KV, args.D, args.REPS
    causal = args.mask == "causal"
    label = f"torch-attention B{b} T{t} H{h}/{kv} D{d} {args.mask} {args.backend}"

    torch.manual_seed(0)
    q = torch.rand(b, h, t, d, device="cuda", dtype=torch.bfloat16) * 2 - 1
    k = torch.rand(b, kv, t, d, device="cuda", dtype=torch.bfloat16) * 2 - 1
    v = torch.rand(b, kv, t, d, device="cuda", dtype=torch.bfloat16) * 2 - 1
    dout = torch.rand(b, h, t, d, device="cuda", dtype=torch.bfloat16)
    inputs = [x.detach().requires_grad_() for x in (q, k, v)]
    gqa = kv != h

    def forward():
        q_, k_, v_ = inputs
        if gqa:
            return F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal, enable_gqa=True)
        return F.scaled_dot_product_attention(q_, k_, v_, is_causal=causal)

    def backward():
        return torch.autograd.grad(forward(), inputs, dout)

    stage = "forward"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with backend_context(args.backend):
                try:
                    forward()
                except (RuntimeError, TypeError):
                    if not gqa:
                        raise
                    # The backend (or this PyTorch) refuses enable_gqa: K/V heads repeated to H
                    # instead (the same FLOPs; the gradients land on the repeated tensors).
                    inputs[1:] = [x.repeat_interleave(h // kv, dim=1).detach().requires_grad_() for x in (k, v)]
                    gqa = False
                    label += " (kv repeated)"
                    caught.clear()
                    forward()
                torch.cuda.synchronize()
                forward_ms = median_ms(forward, reps)
                stage = "backward"
                backward()
                torch.cuda.synchronize()
                backward_ms = median_ms(backward, reps) - forward_ms
        except (RuntimeError, ImportError) as error:
            reason = short_reason(error, caught)
            print(f"{label}: unsupported ({'backward: ' if stage == 'backward' else ''}{reason})")
            return
    flops = 4.0 * b * h * t * t * d / (2.0 if causal else 1.0)
    print(f"{label}: fwd {forward_ms:.3f} ms {flops / forward_ms / 1e9:.0f} TFLOP/s "
          f"bwd {backward_ms:.3f} ms {2.5 * flops / backward_ms / 1e9:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
