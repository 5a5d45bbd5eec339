#pragma once
// Tensor-by-tensor comparison of two checkpoints, whatever layouts wrote them (each tensor is
// gathered whole from its pieces). `kiln info CKPT --compare OTHER` prints it; the parallel
// equivalence tests use it to check gradients across layouts.
#include <string>
#include <vector>

#include "trainer/checkpoint/checkpoint_reader.hpp"

namespace kiln::checkpoint {

struct TensorDifference {
  std::string name;
  // ||a - b|| / max(||b||, 1e-3 x the largest ||b|| compared); +inf when missing or reshaped
  double relative = 0.0;
  std::string problem;    // why the tensors cannot be compared, if they cannot
};

// Every tensor of `a` whose name starts with `prefix`, against the same tensor of `b`.
std::vector<TensorDifference> compare_checkpoints(const CheckpointReader& a, const CheckpointReader& b,
                                                  const std::string& prefix = "");

// True for a step directory, a checkpoints/ directory or a run directory holding one.
bool looks_like_checkpoint(const std::filesystem::path& path);

}  // namespace kiln::checkpoint
