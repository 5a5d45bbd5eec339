#include "trainer/model/init.hpp"

#include <cmath>
#include <numbers>
#include <vector>

#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"

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

// Draws the global tensor's real rows in row-major order, one row at a time through a
// one-row double buffer (a large embedding never needs a second full-size copy), and keeps
// this shard's part: rows [row_offset, row_offset + local rows), columns [col_offset,
// col_offset + local cols). Every layout thus starts from the serial values. Drawing stops
// after the shard's last row.
void fill_normal_shard(Tensor real_rows, const ParameterInfo& info, std::uint64_t seed,
                       double std_dev) {
  // A vector is one row of draws (a bias split by columns of its only dim).
  const bool is_vector = info.global_shape.rank() == 1;
  const std::int64_t global_cols = info.global_shape[is_vector ? 0 : 1];
  const std::int64_t local_cols = info.shape[is_vector ? 0 : 1];
  const std::int64_t row_offset = is_vector ? 0 : info.global_offset[0];
  const std::int64_t col_offset = info.global_offset[is_vector ? 0 : 1];
  const std::int64_t local_rows = is_vector ? 1 : real_rows.size(0);
  const Tensor rows2d = real_rows.reshape({local_rows, local_cols});
  std::vector<double> row(static_cast<std::size_t>(global_cols));
  NormalStream normal(seed);
  for (std::int64_t r = 0; r < row_offset + local_rows; ++r) {
    for (double& value : row) value = std_dev * normal.next();
    if (r < row_offset) continue;
    ops::copy(rows2d.select(r - row_offset), Tensor::of(row.data() + col_offset, {local_cols}));
  }
}

}  // namespace

void init_parameter(Tensor value, const ParameterInfo& info, const ModelConfig& config,
                    std::uint64_t run_seed) {
  if (info.global_shape.rank() < 1 || info.global_shape.rank() > 2)
    fail("init: parameter {} has shape {}; expected a vector or a matrix", info.name,
         info.global_shape.str());
  ops::zero(value);  // padded rows stay zero
  if (info.numel() == 0 || info.valid_rows == 0) return;
  const Tensor real_rows = value.narrow(0, 0, info.valid_rows);
  switch (info.init) {
    case InitKind::zeros:
      return;
    case InitKind::ones:
      ops::fill(real_rows, 1.0);
      return;
    case InitKind::normal:
    case InitKind::normal_residual:
      fill_normal_shard(real_rows, info, parameter_seed(run_seed, info.name),
                        init_std(config, info.init));
      return;
  }
}

void init_parameters(const ParameterStore& store, const ModelConfig& config,
                     std::uint64_t run_seed) {
  for (std::size_t i = 0; i < store.size(); ++i)
    init_parameter(store.value(i), store.infos()[i], config, run_seed);
}

}  // namespace kiln::model
