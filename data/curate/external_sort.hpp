#pragma once
// Sorts fixed-size records that may not fit in memory: records gather in a buffer of at
// most `memory_budget` bytes; a full buffer is sorted and written to a run file; the runs
// are merged with a heap at the end (Knuth vol. 3, 5.4.1). Memory stays at the budget plus
// one read buffer per run, whatever the number of records. Used for the MinHash band
// records, the exact-hash records and the line-hash records of dedup.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <queue>
#include <string>
#include <type_traits>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::curate {

template <class Record>
class ExternalSorter {
  static_assert(std::is_trivially_copyable_v<Record>);

 public:
  ExternalSorter(std::filesystem::path spill_dir, std::size_t memory_budget)
      : spill_dir_(std::move(spill_dir)),
        capacity_(std::max<std::size_t>(memory_budget / sizeof(Record), 16)) {}
  ~ExternalSorter() { remove_runs(); }
  ExternalSorter(const ExternalSorter&) = delete;
  ExternalSorter& operator=(const ExternalSorter&) = delete;

  void add(const Record& record) {
    buffer_.push_back(record);
    ++count_;
    if (buffer_.size() >= capacity_) spill();
  }
  std::size_t size() const { return count_; }
  std::size_t runs_spilled() const { return runs_.size(); }

  // Visits every record in sorted order; the sorter is empty afterwards.
  template <class Visit>
  void drain(Visit&& visit) {
    std::sort(buffer_.begin(), buffer_.end());
    if (runs_.empty()) {
      for (const Record& record : buffer_) visit(record);
    } else {
      if (!buffer_.empty()) spill();
      merge_runs(visit);
    }
    buffer_.clear();
    buffer_.shrink_to_fit();
    remove_runs();
    count_ = 0;
  }

 private:
  // A run file read back in blocks.
  struct RunReader {
    std::FILE* file = nullptr;
    std::vector<Record> block;
    std::size_t next = 0;
    bool refill() {
      block.resize(kBlockRecords);
      const std::size_t got = std::fread(block.data(), sizeof(Record), kBlockRecords, file);
      block.resize(got);
      next = 0;
      return got > 0;
    }
  };
  static constexpr std::size_t kBlockRecords = 8192;

  void spill() {
    std::sort(buffer_.begin(), buffer_.end());
    std::filesystem::create_directories(spill_dir_);
    const auto path = spill_dir_ / ("run-" + std::to_string(serial()) + ".bin");
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) fail("cannot create spill file '{}': {}", path.string(), std::strerror(errno));
    const std::size_t written = std::fwrite(buffer_.data(), sizeof(Record), buffer_.size(), file);
    if (std::fclose(file) != 0 || written != buffer_.size()) {
      fail("write error on spill file '{}' (disk full?)", path.string());
    }
    runs_.push_back(path);
    buffer_.clear();
  }

  template <class Visit>
  void merge_runs(Visit& visit) {
    std::vector<RunReader> readers(runs_.size());
    using Head = std::pair<Record, std::size_t>;
    auto later = [](const Head& a, const Head& b) { return b.first < a.first || (!(a.first < b.first) && b.second < a.second); };
    std::priority_queue<Head, std::vector<Head>, decltype(later)> heap(later);
    for (std::size_t i = 0; i < runs_.size(); ++i) {
      readers[i].file = std::fopen(runs_[i].c_str(), "rb");
      if (readers[i].file == nullptr) fail("cannot reopen spill file '{}'", runs_[i].string());
      if (readers[i].refill()) heap.push({readers[i].block[readers[i].next++], i});
    }
    while (!heap.empty()) {
      const auto [record, run] = heap.top();
      heap.pop();
      visit(record);
      RunReader& reader = readers[run];
      if (reader.next < reader.block.size() || reader.refill()) heap.push({reader.block[reader.next++], run});
    }
    for (auto& reader : readers) std::fclose(reader.file);
  }

  void remove_runs() {
    std::error_code ignored;
    for (const auto& run : runs_) std::filesystem::remove(run, ignored);
    runs_.clear();
  }

  static std::size_t serial() {
    static std::size_t next = 0;
    return next++;
  }

  std::filesystem::path spill_dir_;
  std::size_t capacity_;
  std::vector<Record> buffer_;
  std::vector<std::filesystem::path> runs_;
  std::size_t count_ = 0;
};

}  // namespace kiln::curate
