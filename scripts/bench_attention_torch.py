#!/usr/bin/env python3
"""PyTorch's side of the attention benchmark (tests/bench/cuda/attention_bench.cpp): causal
scaled_dot_product_attention in bf16 on the GPU (FlashAttention-2 kernels on Hopper), forward
and backward, timed with CUDA events (median of REPS after warm-up), the same FLOP convention.

usage: bench_attention_torch.py B T H KV D [REPS]
prints: "torch-attention B<B> T<T> H<H>/<KV> D<D>: fwd <ms> <TFLOP/s> bwd <ms> <TFLOP/s>" """
import statistics
import sys
import time

import torch
import torch.nn.functional as F


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


def main():
    b, t, h, kv, d = map(int, sys.argv[1:6])
    reps = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    torch.manual_seed(0)
    q = torch.rand(b, h, t, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) * 2 - 1
    k = torch.rand(b, kv, t, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) * 2 - 1
    v = torch.rand(b, kv, t, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) * 2 - 1
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    dout = torch.rand(b, h, t, d, device="cuda", dtype=torch.bfloat16)

    def forward():
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv != h)

    out = forward()
    forward_ms = median_ms(forward, reps)
    backward_ms = median_ms(lambda: torch.autograd.grad(forward(), (q, k, v), dout), reps) - forward_ms
    flops = 4.0 * b * h * t * t * d / 2.0
    print(f"torch-attention B{b} T{t} H{h}/{kv} D{d}: fwd {forward_ms:.3f} ms {flops / forward_ms / 1e9:.0f} TFLOP/s "
          f"bwd {backward_ms:.3f} ms {2.5 * flops / backward_ms / 1e9:.0f} TFLOP/s")
    del out


if __name__ == "__main__":
    main()
