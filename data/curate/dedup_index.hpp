#pragma once
// The corpus-wide half of dedup (stages 3 and 4, and line dedup): every document
// contributes (hash, ordinal) records: its exact hash, one record per LSH band, and one per
// distinct line. The records are sorted externally (bounded memory); equal hashes are then
// adjacent, so duplicates and LSH candidates fall out of one linear scan. Decisions depend
// only on the records, never on their arrival order: the lowest ordinal of every exact
// group and of every near-duplicate cluster is kept.
#include <cstdint>
#include <filesystem>
#include <utility>
#include <vector>

#include "data/curate/external_sort.hpp"

namespace kiln::curate {

struct HashRecord {
  std::uint64_t hash = 0;
  std::uint64_t ordinal = 0;
  bool operator<(const HashRecord& other) const {
    return hash != other.hash ? hash < other.hash : ordinal < other.ordinal;
  }
};

enum class DedupKind { Exact = 0, Band = 1, Line = 2 };

struct DedupDecisions {
  std::vector<std::uint64_t> exact_removed;  // sorted ordinals
  std::vector<std::uint64_t> near_removed;   // sorted ordinals
  std::vector<HashRecord> line_removals;     // (line hash, ordinal), sorted by ordinal then hash
  std::uint64_t candidate_pairs = 0;         // LSH pairs (each member with its bucket's first)
  std::uint64_t clusters = 0;                // near-duplicate clusters with 2+ documents
  std::size_t spilled_runs = 0;              // external-sort runs written (memory budget hit)
};

class DedupIndex {
 public:
  DedupIndex(const std::filesystem::path& spill_dir, std::size_t memory_budget_bytes);

  void add(DedupKind kind, std::uint64_t hash, std::uint64_t ordinal);
  // Hands every record of one kind, sorted, to visit (for shipping to rank 0); empties it.
  template <class Visit>
  void drain(DedupKind kind, Visit&& visit) {
    sorter(kind).drain(visit);
  }
  DedupDecisions decide();

 private:
  ExternalSorter<HashRecord>& sorter(DedupKind kind);
  ExternalSorter<HashRecord> exact_;
  ExternalSorter<HashRecord> bands_;
  ExternalSorter<HashRecord> lines_;
};

// True when ordinal is in the sorted list.
bool contains_ordinal(const std::vector<std::uint64_t>& sorted, std::uint64_t ordinal);

}  // namespace kiln::curate
