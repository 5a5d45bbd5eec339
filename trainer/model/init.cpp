#include "trainer/model/init.hpp"

#include <cmath>
#include <numbers>
#include <vector>

#include "trainer/core/checksum.hpp"

namespace kiln::model {

std::uint64_t parameter_seed(std::uint64_t run_seed, std::string_view name) {
  return mix_seed(run_seed, xxh3_64(name));
}

double NormalStream::next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 1 - uniform() lies in (0, 1], so the logarithm is finite.
  const double radius = std::sqrt(-2.0 * std::log(1.0 - rng_.uniform()));
  const double angle = 2.0 * std::numbers::pi * rng_.uniform();
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

double init_std(const ModelConfig& config, InitKind kind) {
  switch (kind) {
    case InitKind::normal:
      return config.init_std;
    case InitKind::normal_residual:
      return config.init_std / std::sqrt(2.0 * static_cast<double>(config.n_layers));
    case InitKind::zeros:
    case InitKind::ones:
      return 0.0;
  }
  return 0.0;
}

namespace {

// Draws row after row through a one-row double buffer, so a large embedding never needs a
// second full-size copy.
void fill_normal_rows(Tensor real_rows, std::uint64_t seed, double std_dev) {
  const std::int64_t cols = real_rows.rank() == 1 ? real_rows.numel() : real_rows.size(-1);
  const Tensor rows2d = real_rows.reshape({-1, cols});
  std::vector<double> row(static_cast<std::size_t>(cols));
  NormalStream normal(seed);
  for (std::int64_t r = 0; r < rows2d.size(0); ++r) {
    for (double& value : row) value = std_dev * normal.next();
    ops::copy(rows2d.select(r), Tensor::of(row.data(), {cols}));
  }
}

}  // namespace

void init_parameter(Tensor value, const ParameterInfo& info, const ModelConfig& config,
                    std::uint64_t run_seed) {
  ops::zero(value);  // padded rows stay zero
  if (info.numel() == 0) return;
  const Tensor real_rows = value.narrow(0, 0, info.valid_rows);
  switch (info.init) {
    case InitKind::zeros:
      return;
    case InitKind::ones:
      ops::fill(real_rows, 1.0);
      return;
    case InitKind::normal:
    case InitKind::normal_residual:
      fill_normal_rows(real_rows, parameter_seed(run_seed, info.name), init_std(config, info.init));
      return;
  }
}

void init_parameters(const ParameterStore& store, const ModelConfig& config,
                     std::uint64_t run_seed) {
  for (std::size_t i = 0; i < store.size(); ++i)
    init_parameter(store.value(i), store.infos()[i], config, run_seed);
}

}  // namespace kiln::model
