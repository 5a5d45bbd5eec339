#!/usr/bin/env python3
"""PyTorch side of scripts/bench_train_cpu.sh and scripts/gpu_check.sh: the same training step
(forward, backward, clipping, AdamW) of the same model shape with transformers' GPT-2 / Llama,
on the CPU in fp32 or on the GPU (DEVICE cuda) in bf16 autocast with fp32 master weights and
fused AdamW, attention through torch's scaled_dot_product_attention (flash on Hopper).

usage: bench_train_torch.py FAMILY D_MODEL LAYERS HEADS KV_HEADS D_FF VOCAB SEQ BATCH STEPS THREADS [DEVICE]
prints: "torch <tokens/s> <GFLOP/s> <seconds/step>" using kiln's FLOP count (6N + 12 L d T)."""
import sys
import time

import torch
import transformers


def build(family, d, layers, heads, kv_heads, d_ff, vocab, seq):
    if family == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab, n_positions=seq, n_embd=d, n_layer=layers,
                                         bos_token_id=0, eos_token_id=0,
                                         n_head=heads, n_inner=d_ff, activation_function="gelu_new",
                                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return transformers.GPT2LMHeadModel(config)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=d_ff,
                                      num_hidden_layers=layers, num_attention_heads=heads,
                                      num_key_value_heads=kv_heads, max_position_embeddings=seq,
                                      tie_word_embeddings=False)
    return transformers.LlamaForCausalLM(config)


def matmul_params(family, d, layers, heads, kv_heads, d_ff, vocab):
    head_dim = d // heads
    attention = d * (heads + 2 * kv_heads) * head_dim + heads * head_dim * d
    mlp = (3 if family == "llama" else 2) * d * d_ff
    return layers * (attention + mlp) + vocab * d


def main():
    family = sys.argv[1]
    d, layers, heads, kv_heads, d_ff, vocab, seq, batch, steps, threads = map(int, sys.argv[2:12])
    device = sys.argv[12] if len(sys.argv) > 12 else "cpu"
    on_gpu = device == "cuda"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(family, d, layers, heads, kv_heads, d_ff, vocab, seq).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                                  fused=on_gpu)
    tokens = torch.randint(0, vocab, (batch, seq), device=device)
    targets = torch.randint(0, vocab, (batch, seq), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=on_gpu):
            logits = model(input_ids=tokens).logits
            loss = torch.nn.functional.cross_entropy(logits.view(-1, vocab).float(), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize()

    for _ in range(3 if on_gpu else 1):  # warm-up: kernels chosen, allocator filled
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    seconds = (time.perf_counter() - start) / steps
    tokens_per_second = batch * seq / seconds
    flops = 6 * matmul_params(family, d, layers, heads, kv_heads, d_ff, vocab) + 12 * layers * d * seq
    print(f"torch {tokens_per_second:.1f} {flops * tokens_per_second / 1e9:.2f} {seconds:.4f}")


if __name__ == "__main__":
    main()
