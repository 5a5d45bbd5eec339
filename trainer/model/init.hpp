#pragma once
// Parameter initialisation from (global name, run seed) only (DESIGN.md §6): a parameter's
// values never depend on the layout (tp, pp, dp), on the registry order or on other
// parameters, so every rank can initialise exactly its own shard and get the serial values.
//
// Rules (GPT-2 / llm.c / Megatron): matrices N(0, init_std^2); the projections that write into
// the residual stream (attn.out, mlp.down) N(0, (init_std / sqrt(2 n_layers))^2); biases 0;
// norm weights 1; padded vocabulary rows 0.
#include <cstdint>
#include <string_view>

#include "trainer/core/random.hpp"
#include "trainer/model/parameters.hpp"

namespace kiln::model {

// The stream seed of one parameter: mix_seed(run seed, xxh3(name)).
std::uint64_t parameter_seed(std::uint64_t run_seed, std::string_view name);

// Standard normal draws (Box–Muller on kiln::Rng), so the values are identical on every
// platform and standard library (std::normal_distribution is implementation-defined).
class NormalStream {
 public:
  explicit NormalStream(std::uint64_t seed) : rng_(seed) {}
  double next();

 private:
  Rng rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Standard deviation of a normally initialised parameter (0 for zeros/ones).
double init_std(const ModelConfig& config, InitKind kind);

// Writes the initial values of one parameter into `value` (its local stored shape, f32/f64):
// the values of this shard in the global tensor, whose real rows get the rule's values in
// row-major draw order (the same for every layout); padded rows get 0.
void init_parameter(Tensor value, const ParameterInfo& info, const ModelConfig& config,
                    std::uint64_t run_seed);

// Initialises every parameter of the store.
void init_parameters(const ParameterStore& store, const ModelConfig& config,
                     std::uint64_t run_seed);

}  // namespace kiln::model
