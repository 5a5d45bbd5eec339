#pragma once
// Model size and training cost, for the MFU the live line reports (DESIGN.md §1 "measured, not
// assumed": the peak used is printed next to the MFU).
#include <cstdint>

#include "trainer/config/recipe.hpp"

namespace kiln::metrics {

// Trainable parameters as the family defines them (norms and biases included, the tied head
// counted once), for model.vocab_size rows; needs a resolved vocab_size.
std::int64_t parameter_count(const config::ModelConfig& model);

// Training FLOPs per token, forward and backward, the convention of the PaLM paper (appendix B)
// and llm.c: 6 per weight of every matmul (output head included, embedding lookups not) plus
// 12 * n_layers * d_model * seq_len for attention scores and values (not halved for causal).
double training_flops_per_token(const config::ModelConfig& model, int seq_len);

// Model FLOPs utilisation as a fraction; 0 when the peak is unknown.
double model_flops_utilisation(double flops_per_token, double tokens_per_second, double peak_flops);

// Estimated fp32 peak of `threads` CPU cores (0 = all): cores * clock * FLOPs per cycle from
// /proc/cpuinfo (32 with AVX2+FMA, 64 with AVX-512, 8 otherwise). An estimate: set
// log.peak_tflops in the recipe for a measured figure. 0 when it cannot be read.
double estimate_cpu_peak_flops(int threads);

}  // namespace kiln::metrics
