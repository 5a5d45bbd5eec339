#include "trainer/checkpoint/checkpoint_compare.hpp"

#include <cmath>
#include <limits>

#include "trainer/checkpoint/checkpoint_names.hpp"

namespace kiln::checkpoint {

std::vector<TensorDifference> compare_checkpoints(const CheckpointReader& a, const CheckpointReader& b,
                                                  const std::string& prefix) {
  std::vector<TensorDifference> differences;
  for (const auto& name : a.tensor_names()) {
    if (!name.starts_with(prefix)) continue;
    TensorDifference difference{name, std::numeric_limits<double>::infinity(), ""};
    if (!b.has(name)) {
      difference.problem = "missing in the other checkpoint";
    } else if (a.tensor(name).global_shape != b.tensor(name).global_shape) {
      difference.problem = "different shapes";
    } else {
      const auto x = a.read_double(name), y = b.read_double(name);
      double error = 0.0, reference = 0.0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        error += (x[i] - y[i]) * (x[i] - y[i]);
        reference += y[i] * y[i];
      }
      difference.relative = reference > 0.0 ? std::sqrt(error / reference) : std::sqrt(error);
    }
    differences.push_back(std::move(difference));
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
