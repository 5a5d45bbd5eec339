#include "trainer/checkpoint/checkpoint_compare.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "trainer/checkpoint/checkpoint_names.hpp"

namespace kiln::checkpoint {

namespace {

struct Norms {
  double error = 0.0;      // ||a - b||
  double reference = 0.0;  // ||b||
};

Norms norms_of(const std::vector<double>& x, const std::vector<double>& y) {
  double error = 0.0, reference = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    error += (x[i] - y[i]) * (x[i] - y[i]);
    reference += y[i] * y[i];
  }
  return {std::sqrt(error), std::sqrt(reference)};
}

}  // namespace

std::vector<TensorDifference> compare_checkpoints(const CheckpointReader& a, const CheckpointReader& b,
                                                  const std::string& prefix) {
  std::vector<TensorDifference> differences;
  std::vector<Norms> norms;
  double largest_reference = 0.0;
  for (const auto& name : a.tensor_names()) {
    if (!name.starts_with(prefix)) continue;
    TensorDifference difference{name, std::numeric_limits<double>::infinity(), ""};
    if (!b.has(name)) {
      difference.problem = "missing in the other checkpoint";
    } else if (a.tensor(name).global_shape != b.tensor(name).global_shape) {
      difference.problem = "different shapes";
    } else {
      norms.resize(differences.size() + 1);
      norms.back() = norms_of(a.read_double(name), b.read_double(name));
      largest_reference = std::max(largest_reference, norms.back().reference);
    }
    norms.resize(differences.size() + 1);
    differences.push_back(std::move(difference));
  }
  // A tensor far smaller than the others (e.g. a gradient that is zero in exact arithmetic,
  // such as GPT-2's key bias) holds rounding noise: measure it against a floor of a thousandth
  // of the largest tensor instead of against itself.
  const double floor = 1e-3 * largest_reference;
  for (std::size_t i = 0; i < differences.size(); ++i) {
    if (!differences[i].problem.empty()) continue;
    const double scale = std::max(norms[i].reference, floor);
    differences[i].relative = scale > 0.0 ? norms[i].error / scale : norms[i].error;
  }
  return differences;
}

bool looks_like_checkpoint(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  return fs::exists(path / std::string(kMetaFile), ignored) || fs::exists(path / std::string(kLatestFile), ignored) ||
         fs::exists(path / "checkpoints" / std::string(kLatestFile), ignored);
}

}  // namespace kiln::checkpoint
