#pragma once
// The global gradient norm for clipping, with every parameter counted exactly once across the
// grid (DESIGN.md §6): a tensor-parallel shard counts on its rank; a replicated parameter
// (identical on every tp rank) only on tp rank 0; the last stage's copy of a tied embedding
// not at all (the first stage's counts); after the dp reduction every dp rank holds the same
// gradients, so only dp rank 0 counts them — unless ZeRO-1 left each rank a distinct shard.
#include "parallel/process_grid.hpp"
#include "trainer/model/parameters.hpp"
#include "trainer/optim/adamw.hpp"

namespace kiln::train {

// True when this rank's copy of the parameter is the one that counts (and is saved).
bool counts_parameter(const model::ParameterInfo& info, const parallel::ProcessGrid& grid);

// sqrt of the sum of squares of the reduced gradients `grads` (laid out as the optimizer's
// owned range), summed over the world. Every rank calls it and gets the same value.
double global_gradient_norm(const model::ParameterStore& params, const optim::AdamW& optimizer, Tensor grads,
                            parallel::ProcessGrid& grid, bool zero);

// True on every rank when every rank's `grads` are finite.
bool finite_everywhere(Tensor grads, parallel::ProcessGrid& grid);

}  // namespace kiln::train
