#include "data/curate/record_reader.hpp"

#include "trainer/core/error.hpp"

namespace kiln::curate {

RecordReader::RecordReader(std::vector<std::filesystem::path> inputs) : inputs_(std::move(inputs)) {
  data::check_inputs_readable(inputs_);
}

RecordReader::~RecordReader() = default;
RecordReader::RecordReader(RecordReader&&) noexcept = default;
RecordReader& RecordReader::operator=(RecordReader&&) noexcept = default;

bool RecordReader::next(RawRecord& record) {
  while (true) {
    if (!source_) {
      if (next_input_ == inputs_.size()) return false;
      source_ = data::open_record_source(inputs_[next_input_++]);
    }
    if (!source_->next(record.bytes)) {
      source_.reset();
      continue;
    }
    bytes_read_ += record.bytes.size() + 1;
    const auto source = static_cast<std::uint32_t>(next_input_ - 1);
    if (source_->format() != RecordFormat::Text) {
      if (!record.bytes.empty() && record.bytes.back() == '\r') record.bytes.pop_back();
      if (record.bytes.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    }
    record.source = source;
    record.line = source_->line();
    record.ordinal = next_ordinal_++;
    return true;
  }
}

}  // namespace kiln::curate
