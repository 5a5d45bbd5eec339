#pragma once
// Disjoint sets over document ordinals, sparse (only documents that are in some candidate
// pair are stored). The root of every set is its smallest ordinal, so "keep the root" keeps
// the earliest document of each cluster whatever order the pairs arrive in.
#include <cstdint>
#include <unordered_map>

namespace kiln::curate {

class UnionFind {
 public:
  std::uint64_t find(std::uint64_t item);
  void unite(std::uint64_t a, std::uint64_t b);
  // Calls visit(member, root) for every stored item (unordered).
  template <class Visit>
  void for_each(Visit&& visit) {
    for (auto& [item, parent] : parent_) visit(item, find(item));
  }
  std::size_t size() const { return parent_.size(); }

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> parent_;
};

}  // namespace kiln::curate
