#include "data/curate/union_find.hpp"

#include <utility>
#include <vector>

namespace kiln::curate {

std::uint64_t UnionFind::find(std::uint64_t item) {
  auto [it, inserted] = parent_.try_emplace(item, item);
  if (inserted) return item;
  std::uint64_t root = item;
  while (true) {
    const std::uint64_t parent = parent_.find(root)->second;
    if (parent == root) break;
    root = parent;
  }
  // Path compression: every item on the way now points at the root.
  std::uint64_t current = item;
  while (current != root) {
    auto& parent = parent_.find(current)->second;
    current = std::exchange(parent, root);
  }
  return root;
}

void UnionFind::unite(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t root_a = find(a);
  const std::uint64_t root_b = find(b);
  if (root_a == root_b) return;
  // The smaller ordinal becomes the root: the cluster's keeper.
  if (root_a < root_b) parent_[root_b] = root_a;
  else parent_[root_a] = root_b;
}

}  // namespace kiln::curate
