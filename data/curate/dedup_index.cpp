#include "data/curate/dedup_index.hpp"

#include <algorithm>

#include "data/curate/union_find.hpp"

namespace kiln::curate {

namespace {

// Calls on_group(first, end) for each run of records with equal hashes, streaming.
template <class OnGroup>
void for_each_group(ExternalSorter<HashRecord>& sorter, OnGroup&& on_group) {
  std::vector<HashRecord> group;
  sorter.drain([&](const HashRecord& record) {
    if (!group.empty() && group.front().hash != record.hash) {
      on_group(group);
      group.clear();
    }
    group.push_back(record);
  });
  if (!group.empty()) on_group(group);
}

}  // namespace

bool contains_ordinal(const std::vector<std::uint64_t>& sorted, std::uint64_t ordinal) {
  return std::binary_search(sorted.begin(), sorted.end(), ordinal);
}

DedupIndex::DedupIndex(const std::filesystem::path& spill_dir, std::size_t memory_budget_bytes)
    : exact_(spill_dir / "exact", memory_budget_bytes / 6),
      bands_(spill_dir / "bands", memory_budget_bytes * 4 / 6),
      lines_(spill_dir / "lines", memory_budget_bytes / 6) {}

ExternalSorter<HashRecord>& DedupIndex::sorter(DedupKind kind) {
  switch (kind) {
    case DedupKind::Exact: return exact_;
    case DedupKind::Band: return bands_;
    case DedupKind::Line: break;
  }
  return lines_;
}

void DedupIndex::add(DedupKind kind, std::uint64_t hash, std::uint64_t ordinal) { sorter(kind).add({hash, ordinal}); }

DedupDecisions DedupIndex::decide() {
  DedupDecisions decisions;
  decisions.spilled_runs = exact_.runs_spilled() + bands_.runs_spilled() + lines_.runs_spilled();
  // Exact: every document after the first of its hash goes.
  for_each_group(exact_, [&](const std::vector<HashRecord>& group) {
    for (std::size_t i = 1; i < group.size(); ++i) decisions.exact_removed.push_back(group[i].ordinal);
  });
  std::sort(decisions.exact_removed.begin(), decisions.exact_removed.end());

  // Near: documents sharing a band bucket are joined; each cluster keeps its smallest ordinal.
  UnionFind clusters;
  for_each_group(bands_, [&](const std::vector<HashRecord>& group) {
    std::uint64_t first = 0;
    bool have_first = false;
    for (const auto& record : group) {
      if (contains_ordinal(decisions.exact_removed, record.ordinal)) continue;
      if (!have_first) {
        first = record.ordinal;
        have_first = true;
      } else if (record.ordinal != first) {
        clusters.unite(first, record.ordinal);
        ++decisions.candidate_pairs;
      }
    }
  });
  clusters.for_each([&](std::uint64_t member, std::uint64_t root) {
    if (member != root) decisions.near_removed.push_back(member);
    else ++decisions.clusters;
  });
  std::sort(decisions.near_removed.begin(), decisions.near_removed.end());

  // Lines: a line stays only in the first surviving document that has it.
  for_each_group(lines_, [&](const std::vector<HashRecord>& group) {
    bool kept_once = false;
    for (const auto& record : group) {
      if (contains_ordinal(decisions.exact_removed, record.ordinal) ||
          contains_ordinal(decisions.near_removed, record.ordinal)) {
        continue;
      }
      if (kept_once) decisions.line_removals.push_back(record);
      kept_once = true;
    }
  });
  std::sort(decisions.line_removals.begin(), decisions.line_removals.end(), [](const HashRecord& a, const HashRecord& b) {
    return a.ordinal != b.ordinal ? a.ordinal < b.ordinal : a.hash < b.hash;
  });
  return decisions;
}

}  // namespace kiln::curate
