#include "trainer/plan/plan_layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "trainer/config/parallel_layout.hpp"
#include "trainer/core/error.hpp"

namespace kiln::plan {

namespace {

constexpr std::array<Recompute, 3> kRecomputes{Recompute::none, Recompute::selective, Recompute::full};

std::vector<int> divisors(std::int64_t n) {
  std::vector<int> result;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) result.push_back(d);
  return result;
}

// The recipe keys a layout sets: a user's --set of one of them gives way to the layout's value.
constexpr std::array<std::string_view, 9> kLayoutKeys{"parallel.dp",
                                                      "parallel.tp",
                                                      "parallel.pp",
                                                      "parallel.cp",
                                                      "train.recompute",
                                                      "parallel.zero",
                                                      "parallel.sequence_parallel",
                                                      "parallel.micro_batches",
                                                      "train.micro_batch_size"};

std::vector<std::string> user_overrides_of_other_keys(const std::vector<std::string>& overrides) {
  std::vector<std::string> kept;
  for (const std::string& assignment : overrides) {
    const std::string_view key = std::string_view(assignment).substr(0, assignment.find('='));
    if (std::find(kLayoutKeys.begin(), kLayoutKeys.end(), key) == kLayoutKeys.end()) kept.push_back(assignment);
  }
  return kept;
}

std::vector<std::string> layout_overrides(const PlanLayout& layout) {
  return {fmt::format("parallel.dp={}", layout.dp),
          fmt::format("parallel.tp={}", layout.tp),
          fmt::format("parallel.pp={}", layout.pp),
          fmt::format("parallel.cp={}", layout.cp),
          fmt::format("train.recompute={}", recompute_name(layout.recompute)),
          fmt::format("parallel.zero={}", layout.zero),
          fmt::format("parallel.sequence_parallel={}", layout.sequence_parallel),
          "parallel.micro_batches=auto",
          fmt::format("train.micro_batch_size={}", layout.micro_batch_size)};
}

// The (zero, sp, recompute, micro-batch) variants of one dp x tp x pp x cp split.
std::vector<PlanLayout> variants_of(PlanLayout split, const config::Recipe& base, const PlanSpace& space) {
  std::vector<PlanLayout> result;
  // A batch dp does not divide gets one candidate, for the checker to refuse with train's message.
  const std::int64_t per_dp = base.train.batch_size % split.dp == 0 ? base.train.batch_size / split.dp : 1;
  for (const int zero : {0, 1}) {
    if (zero == 1 && split.gradient_replicas() == 1) continue;  // nothing to shard over
    for (const bool sp : {false, true}) {
      if (sp && split.tp == 1) continue;
      for (const Recompute recompute : kRecomputes) {
        if (recompute != Recompute::none && !space.with_cp_and_recompute) continue;
        for (const int micro : divisors(per_dp)) {
          PlanLayout layout = split;
          layout.zero = zero;
          layout.sequence_parallel = sp;
          layout.recompute = recompute;
          layout.micro_batch_size = micro;
          result.push_back(layout);
        }
      }
    }
  }
  return result;
}

}  // namespace

std::string_view recompute_name(Recompute recompute) { return config::to_string(recompute); }

Recompute recompute_from_name(std::string_view name) {
  for (const Recompute recompute : kRecomputes)
    if (recompute_name(recompute) == name) return recompute;
  fail("recompute: '{}' is not one of none, selective, full", name);
}

std::string describe(const PlanLayout& l) {
  return fmt::format("dp {} tp {} pp {} cp {} zero {} sp {} recompute {} micro-batch {} x {}", l.dp, l.tp, l.pp, l.cp,
                     l.zero, l.sequence_parallel ? "on" : "off", recompute_name(l.recompute), l.micro_batch_size,
                     l.micro_batches);
}

LayoutChecker::LayoutChecker(RecipeSource source, std::int64_t vocab_size)
    : source_(std::move(source)), vocab_size_(vocab_size) {}

LayoutChecker::Checked LayoutChecker::check(PlanLayout layout) const {
  std::vector<std::string> overrides = user_overrides_of_other_keys(source_.overrides);
  for (std::string& assignment : layout_overrides(layout)) overrides.push_back(std::move(assignment));
  Checked checked{layout, config::recipe_from_yaml_text(source_.text, source_.name, overrides)};
  if (checked.recipe.model.vocab_size == 0) checked.recipe.model.vocab_size = vocab_size_;
  checked.layout.micro_batches = config::resolve_layout(checked.recipe, layout.dp * layout.tp * layout.pp * layout.cp)
                                     .micro_batches;
  return checked;
}

std::vector<PlanLayout> candidate_layouts(const config::Recipe& base, const PlanSpace& space) {
  std::vector<PlanLayout> candidates;
  for (const int tp : divisors(space.gpus)) {
    if (tp > space.max_tp) continue;
    for (const int cp : divisors(space.gpus / tp)) {
      if (cp > 1 && !space.with_cp_and_recompute) continue;
      for (const int pp : divisors(space.gpus / (tp * cp))) {
        const PlanLayout split{.dp = space.gpus / (tp * cp * pp), .tp = tp, .pp = pp, .cp = cp};
        for (const PlanLayout& candidate : variants_of(split, base, space)) candidates.push_back(candidate);
      }
    }
  }
  return candidates;
}

}  // namespace kiln::plan
