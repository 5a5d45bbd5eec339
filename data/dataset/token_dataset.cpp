#include "data/dataset/token_dataset.hpp"

#include <algorithm>
#include <bit>
#include <nlohmann/json.hpp>

#include "data/dataset/hdf5_file.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"
#include "trainer/core/version.hpp"

namespace kiln::data {

namespace {

namespace fs = std::filesystem;

// Chunk sizes in elements. 256K tokens is 512 KiB (uint16) or 1 MiB (uint32): big enough
// that sequential scans are a few large reads, small enough that appends stay cheap.
constexpr std::uint64_t kTokenChunk = 1 << 18;
constexpr std::uint64_t kOffsetChunk = 1 << 16;
constexpr std::uint64_t kMaskChunk = 1 << 20;
// The writer buffers this many tokens before it extends the datasets.
constexpr std::uint64_t kWriterFlushTokens = 1 << 20;
// verify() streams the file in blocks of this many elements.
constexpr std::uint64_t kVerifyBlock = 1 << 20;
// Reader chunk cache per dataset: none, on purpose. HDF5 reads a chunk that does not fit the
// cache straight from the file, only the selected bytes of it (the chunks are uncompressed), so a
// shuffled window costs its own ~4 KiB. A cache that holds chunks makes every miss load a whole
// 512 KiB chunk: loader_bench measured 1040 MB/s of shuffled windows without a cache and 83 MB/s
// with a 4 or 64 MiB one on a 512 MB dataset, while in-order reads stayed within 10%. The OS
// page cache still keeps hot file pages.
constexpr std::size_t kReaderCacheBytes = 0;
// document_starts_in keeps doc_offsets[k * kSparseStride] in memory.
constexpr std::uint64_t kSparseStride = 1024;

constexpr std::uint64_t kMaxVocab = std::uint64_t{1} << 32;
constexpr std::uint64_t kMaxUint16Vocab = std::uint64_t{1} << 16;

int token_bits_for(std::uint64_t vocab_size) { return vocab_size <= kMaxUint16Vocab ? 16 : 32; }

template <class T>
T to_little_endian(T value) {
  if constexpr (std::endian::native == std::endian::little) {
    return value;
  } else {
    T swapped = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      swapped = static_cast<T>((swapped << 8) | ((value >> (8 * i)) & 0xff));
    }
    return swapped;
  }
}

// Hashes values as the little-endian bytes the file stores, whatever the host order.
template <class T>
void hash_little_endian(Xxh3Stream& hash, std::span<const T> values) {
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    hash.update(values.data(), values.size_bytes());
  } else {
    std::vector<T> swapped(values.size());
    std::transform(values.begin(), values.end(), swapped.begin(), to_little_endian<T>);
    hash.update(swapped.data(), swapped.size() * sizeof(T));
  }
}

std::string special_ids_json(const std::map<std::string, std::uint32_t>& special_ids) {
  return nlohmann::json(special_ids).dump();
}

}  // namespace

// ---- writer ---------------------------------------------------------------------------------

struct TokenDatasetWriter::Impl {
  fs::path final_path;
  fs::path temp_path;
  TokenDatasetAttributes attributes;
  bool with_loss_mask = false;
  int token_bits = 16;

  hdf5::Handle file;
  hdf5::Handle tokens;
  hdf5::Handle offsets;
  hdf5::Handle mask;

  std::vector<std::uint32_t> token_buffer;
  std::vector<std::uint64_t> offset_buffer;
  std::vector<std::uint8_t> mask_buffer;
  Xxh3Stream tokens_hash;
  Xxh3Stream offsets_hash;
  Xxh3Stream mask_hash;

  std::uint64_t tokens_written = 0;
  std::uint64_t documents_written = 0;
  bool completed = false;  // the temporary file is written and closed
  bool published = false;

  void validate(std::span<const std::uint32_t> document,
                std::span<const std::uint8_t> loss_mask) const;
  void flush();  // failures name the file
  void flush_buffers();
  void flush_tokens();
  void write_attributes();
  void close_file();
};

void TokenDatasetWriter::Impl::validate(std::span<const std::uint32_t> document,
                                        std::span<const std::uint8_t> loss_mask) const {
  const auto where = [&] { return fmt::format("token dataset '{}'", final_path.string()); };
  if (completed) fail("{}: append_document after finish() completed the file", where());
  if (document.empty()) {
    fail("{}: document {} is empty; every document holds at least its EOS token", where(),
         documents_written);
  }
  const auto bad = std::find_if(document.begin(), document.end(), [&](std::uint32_t id) {
    return id >= attributes.vocab_size;
  });
  if (bad != document.end()) {
    fail("{}: document {} has token id {} at position {}, but vocab_size is {}", where(),
         documents_written, *bad, bad - document.begin(), attributes.vocab_size);
  }
  if (with_loss_mask && loss_mask.size() != document.size()) {
    fail("{}: document {} has {} tokens but a loss mask of {} entries", where(),
         documents_written, document.size(), loss_mask.size());
  }
  if (!with_loss_mask && !loss_mask.empty()) {
    fail("{}: a loss mask was given but the dataset was created without one", where());
  }
  const auto bad_mask = std::find_if(loss_mask.begin(), loss_mask.end(),
                                     [](std::uint8_t value) { return value > 1; });
  if (bad_mask != loss_mask.end()) {
    fail("{}: document {} has loss mask value {} at position {}; expected 0 or 1", where(),
         documents_written, static_cast<int>(*bad_mask), bad_mask - loss_mask.begin());
  }
}

void TokenDatasetWriter::Impl::flush_tokens() {
  if (token_bits == 16) {
    std::vector<std::uint16_t> narrow(token_buffer.begin(), token_buffer.end());
    hash_little_endian(tokens_hash, std::span<const std::uint16_t>(narrow));
    hdf5::append_1d(tokens.get(), H5T_NATIVE_UINT16, narrow.data(), narrow.size());
  } else {
    hash_little_endian(tokens_hash, std::span<const std::uint32_t>(token_buffer));
    hdf5::append_1d(tokens.get(), H5T_NATIVE_UINT32, token_buffer.data(), token_buffer.size());
  }
  token_buffer.clear();
}

void TokenDatasetWriter::Impl::flush() {
  try {
    flush_buffers();
  } catch (const Error& error) {
    fail("token dataset '{}': {}", temp_path.string(), error.what());
  }
}

void TokenDatasetWriter::Impl::flush_buffers() {
  std::lock_guard lock(hdf5::library_mutex());
  flush_tokens();
  hash_little_endian(offsets_hash, std::span<const std::uint64_t>(offset_buffer));
  hdf5::append_1d(offsets.get(), H5T_NATIVE_UINT64, offset_buffer.data(), offset_buffer.size());
  offset_buffer.clear();
  if (with_loss_mask) {
    hash_little_endian(mask_hash, std::span<const std::uint8_t>(mask_buffer));
    hdf5::append_1d(mask.get(), H5T_NATIVE_UINT8, mask_buffer.data(), mask_buffer.size());
    mask_buffer.clear();
  }
}

void TokenDatasetWriter::Impl::write_attributes() {
  std::lock_guard lock(hdf5::library_mutex());
  const hid_t root = file.get();
  hdf5::write_string_attribute(root, "kiln_format", kTokenDatasetMarker);
  hdf5::write_uint64_attribute(root, "format_version", kTokenDatasetFormatVersion);
  hdf5::write_string_attribute(root, "split", attributes.split);
  hdf5::write_string_attribute(root, "tokenizer_hash", attributes.tokenizer_hash);
  hdf5::write_uint64_attribute(root, "vocab_size", attributes.vocab_size);
  hdf5::write_string_attribute(root, "special_ids", special_ids_json(attributes.special_ids));
  hdf5::write_string_attribute(root, "source_checksum", attributes.source_checksum);
  hdf5::write_string_attribute(root, "created_by", attributes.created_by);
  if (!attributes.chat_template.empty()) {
    hdf5::write_string_attribute(root, "chat_template", attributes.chat_template);
  }
  hdf5::write_uint64_attribute(root, "num_tokens", tokens_written);
  hdf5::write_uint64_attribute(root, "num_documents", documents_written);
  hdf5::write_string_attribute(root, "tokens_xxh3", to_hex(tokens_hash.digest()));
  hdf5::write_string_attribute(root, "doc_offsets_xxh3", to_hex(offsets_hash.digest()));
  if (with_loss_mask) {
    hdf5::write_string_attribute(root, "loss_mask_xxh3", to_hex(mask_hash.digest()));
  }
}

void TokenDatasetWriter::Impl::close_file() {
  // Every close is checked: closing flushes the chunks HDF5 still holds, and on a full disk
  // that is where the write fails. Only a file whose every close succeeded may be published.
  const std::string where = fmt::format("token dataset '{}'", temp_path.string());
  hdf5::close_checked(tokens, where + " /tokens");
  hdf5::close_checked(offsets, where + " /doc_offsets");
  if (with_loss_mask) hdf5::close_checked(mask, where + " /loss_mask");
  hdf5::close_checked(file, where);
}

TokenDatasetWriter::TokenDatasetWriter(const fs::path& path, TokenDatasetAttributes attributes,
                                       bool with_loss_mask)
    : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  if (attributes.vocab_size == 0 || attributes.vocab_size > kMaxVocab) {
    fail("token dataset '{}': vocab_size {} is out of range (1 to 2^32)", path.string(),
         attributes.vocab_size);
  }
  if (attributes.created_by.empty()) attributes.created_by = fmt::format("kiln {}", kVersion);
  impl.final_path = path;
  impl.temp_path = temporary_path_for(path);
  impl.attributes = std::move(attributes);
  impl.with_loss_mask = with_loss_mask;
  impl.token_bits = token_bits_for(impl.attributes.vocab_size);

  std::lock_guard lock(hdf5::library_mutex());
  impl.file = hdf5::create_file(impl.temp_path);
  impl.tokens = hdf5::create_extendable_1d(
      impl.file.get(), "tokens", impl.token_bits == 16 ? H5T_STD_U16LE : H5T_STD_U32LE,
      kTokenChunk);
  impl.offsets =
      hdf5::create_extendable_1d(impl.file.get(), "doc_offsets", H5T_STD_U64LE, kOffsetChunk);
  if (with_loss_mask) {
    impl.mask = hdf5::create_extendable_1d(impl.file.get(), "loss_mask", H5T_STD_U8LE, kMaskChunk);
  }
  impl.offset_buffer.push_back(0);
}

TokenDatasetWriter::~TokenDatasetWriter() {
  if (!impl_ || impl_->published) return;
  impl_->tokens.reset();
  impl_->offsets.reset();
  impl_->mask.reset();
  impl_->file.reset();
  std::error_code ignored;
  fs::remove(impl_->temp_path, ignored);
}

void TokenDatasetWriter::append_document(std::span<const std::uint32_t> tokens,
                                         std::span<const std::uint8_t> loss_mask) {
  Impl& impl = *impl_;
  impl.validate(tokens, loss_mask);
  impl.token_buffer.insert(impl.token_buffer.end(), tokens.begin(), tokens.end());
  impl.mask_buffer.insert(impl.mask_buffer.end(), loss_mask.begin(), loss_mask.end());
  impl.tokens_written += tokens.size();
  impl.documents_written += 1;
  impl.offset_buffer.push_back(impl.tokens_written);
  if (impl.token_buffer.size() >= kWriterFlushTokens) impl.flush();
}

void TokenDatasetWriter::complete() {
  Impl& impl = *impl_;
  if (impl.completed) fail("token dataset '{}': completed twice", impl.final_path.string());
  impl.flush();
  impl.write_attributes();
  impl.completed = true;  // even if closing fails below: nothing more may be appended
  impl.close_file();
}

void TokenDatasetWriter::publish() {
  Impl& impl = *impl_;
  if (!impl.completed || impl.file.valid()) {
    fail("token dataset '{}': publish() before the file was completed", impl.final_path.string());
  }
  if (impl.published) fail("token dataset '{}': published twice", impl.final_path.string());
  publish_file(impl.temp_path, impl.final_path);
  impl.published = true;
}

void TokenDatasetWriter::finish() {
  complete();
  publish();
}

const fs::path& TokenDatasetWriter::temporary_path() const { return impl_->temp_path; }
std::uint64_t TokenDatasetWriter::tokens_written() const { return impl_->tokens_written; }
std::uint64_t TokenDatasetWriter::documents_written() const { return impl_->documents_written; }

// ---- reader ---------------------------------------------------------------------------------

struct TokenDataset::Impl {
  fs::path path;
  TokenDatasetAttributes attributes;
  TokenDatasetChecksums checksums;
  std::uint64_t num_tokens = 0;
  std::uint64_t num_documents = 0;
  int token_bits = 16;

  hdf5::Handle file;
  hdf5::Handle tokens;
  hdf5::Handle offsets;
  hdf5::Handle mask;  // invalid when the dataset has no loss mask

  // doc_offsets[k * kSparseStride] for every k with k * kSparseStride <= num_documents.
  // Built lazily under the HDF5 lock (the lock also guards this member).
  mutable std::vector<std::uint64_t> sparse_offsets;

  template <class... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail("token dataset '{}': {}", path.string(),
         fmt::format(format, std::forward<Args>(args)...));
  }

  void open_file();
  void read_attributes();
  std::string required_string(const char* name) const;
  std::uint64_t required_integer(const char* name) const;
  hdf5::Handle open_checked(const char* name, std::size_t element_size,
                            std::uint64_t expected_length) const;
  void open_datasets();
  void check_offset_ends() const;
  void check_range(const char* what, std::uint64_t begin, std::uint64_t count,
                   std::uint64_t limit) const;

  const std::vector<std::uint64_t>& sparse_index() const;
  // The k with sparse_offsets[k - 1] < token <= sparse_offsets[k]: the first document starting
  // at or after `token` lies in ((k - 1) * kSparseStride, k * kSparseStride].
  std::uint64_t sparse_block_of(std::uint64_t token) const;

  void verify_tokens() const;
  void verify_offsets() const;
  // Tokens whose mask is 1; throws on a value other than 0 or 1 or a checksum mismatch.
  std::uint64_t verify_mask() const;
  // Offsets read from the file at first, first + stride, ...: a corrupt order is an error, never
  // a window cut at a wrong place or a segment that runs backwards.
  void check_ascending(std::span<const std::uint64_t> offsets_read, std::uint64_t first,
                       std::uint64_t stride) const;
};

void TokenDataset::Impl::open_file() {
  std::error_code status_error;
  const auto status = fs::status(path, status_error);
  if (!fs::exists(status)) error("no such file");
  if (fs::is_directory(status)) {
    error("is a directory; expected an HDF5 token dataset file (e.g. train.h5)");
  }
  // Before the signature probe reads a byte: a FIFO would block it and /dev/zero never ends.
  require_regular_file(path, "token dataset");
  if (!hdf5::has_hdf5_signature(path)) {
    error("not an HDF5 file (no HDF5 signature); expected a token dataset written by kiln prepare");
  }
  file = hdf5::open_file_read_only(path);
  if (!file.valid()) {
    error("HDF5 cannot open it; the file is truncated or damaged ({})", hdf5::take_error_detail());
  }
}

std::string TokenDataset::Impl::required_string(const char* name) const {
  auto value = hdf5::read_string_attribute(file.get(), name);
  if (!value) error("missing or non-string attribute '{}'", name);
  return *value;
}

std::uint64_t TokenDataset::Impl::required_integer(const char* name) const {
  auto value = hdf5::read_uint64_attribute(file.get(), name);
  if (!value) error("missing or non-integer attribute '{}'", name);
  return *value;
}

void TokenDataset::Impl::read_attributes() {
  const auto marker = hdf5::read_string_attribute(file.get(), "kiln_format");
  if (!marker || *marker != kTokenDatasetMarker) {
    error("an HDF5 file, but not a kiln token dataset (root attribute kiln_format is {}, "
          "expected \"{}\")",
          marker ? fmt::format("\"{}\"", *marker) : std::string("absent"), kTokenDatasetMarker);
  }
  const std::uint64_t version = required_integer("format_version");
  if (version > kTokenDatasetFormatVersion) {
    error("format version {} was written by a newer kiln; this build reads up to version {}",
          version, kTokenDatasetFormatVersion);
  }
  if (version == 0) error("format_version 0 is invalid");
  attributes.format_version = static_cast<std::uint32_t>(version);
  attributes.split = required_string("split");
  attributes.tokenizer_hash = required_string("tokenizer_hash");
  attributes.vocab_size = required_integer("vocab_size");
  attributes.source_checksum = required_string("source_checksum");
  attributes.created_by = required_string("created_by");
  attributes.chat_template = hdf5::read_string_attribute(file.get(), "chat_template").value_or("");
  const std::string special = required_string("special_ids");
  try {
    attributes.special_ids = nlohmann::json::parse(special).get<std::map<std::string, std::uint32_t>>();
  } catch (const nlohmann::json::exception& parse_error) {
    error("attribute special_ids is not a JSON object of name -> id ({}): {}", special,
          parse_error.what());
  }
  for (const auto& [name, id] : attributes.special_ids) {
    if (id >= attributes.vocab_size) {
      error("attribute special_ids: {} id {} is outside the vocabulary (vocab_size {})", name, id,
            attributes.vocab_size);
    }
  }
  num_tokens = required_integer("num_tokens");
  num_documents = required_integer("num_documents");
  checksums.tokens = required_string("tokens_xxh3");
  checksums.doc_offsets = required_string("doc_offsets_xxh3");
  if (attributes.vocab_size == 0 || attributes.vocab_size > kMaxVocab) {
    error("vocab_size {} is out of range (1 to 2^32)", attributes.vocab_size);
  }
}

hdf5::Handle TokenDataset::Impl::open_checked(const char* name, std::size_t element_size,
                                             std::uint64_t expected_length) const {
  if (!hdf5::link_exists(file.get(), name)) error("missing dataset /{}", name);
  hdf5::Handle dataset = hdf5::open_dataset(file.get(), name, kReaderCacheBytes);
  const auto shape = hdf5::describe(dataset.get());
  if (shape.type_class != H5T_INTEGER || !shape.is_unsigned || shape.type_size != element_size) {
    error("dataset /{} has type {}; expected uint{}", name, hdf5::type_name(shape),
          element_size * 8);
  }
  if (shape.rank != 1) error("dataset /{} has rank {}; expected 1", name, shape.rank);
  if (shape.length != expected_length) {
    error("dataset /{} has {} elements but the attributes say {}", name, shape.length,
          expected_length);
  }
  // kiln writes every dataset chunked. Another layout in a damaged file can crash libhdf5
  // 1.10 inside H5Dread (a memcpy from a null buffer, found by the token_dataset fuzz target),
  // so it is refused before anything is read.
  if (shape.layout != H5D_CHUNKED) {
    error("dataset /{} is stored {}, but kiln writes its datasets chunked (a damaged file, or not written by "
          "kiln prepare)",
          name, hdf5::layout_name(shape.layout));
  }
  return dataset;
}

void TokenDataset::Impl::open_datasets() {
  if (!hdf5::link_exists(file.get(), "tokens")) error("missing dataset /tokens");
  {
    hdf5::Handle probe = hdf5::open_dataset(file.get(), "tokens", 0);
    const auto shape = hdf5::describe(probe.get());
    token_bits = static_cast<int>(shape.type_size * 8);
    if (shape.type_class != H5T_INTEGER || !shape.is_unsigned ||
        (token_bits != 16 && token_bits != 32)) {
      error("dataset /tokens has type {}; expected uint16 or uint32", hdf5::type_name(shape));
    }
  }
  if (token_bits == 16 && attributes.vocab_size > kMaxUint16Vocab) {
    error("dataset /tokens is uint16 but vocab_size {} needs uint32", attributes.vocab_size);
  }
  tokens = open_checked("tokens", static_cast<std::size_t>(token_bits / 8), num_tokens);
  offsets = open_checked("doc_offsets", 8, num_documents + 1);
  if (hdf5::link_exists(file.get(), "loss_mask")) {
    mask = open_checked("loss_mask", 1, num_tokens);
    checksums.loss_mask = required_string("loss_mask_xxh3");
  }
}

void TokenDataset::Impl::check_offset_ends() const {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  hdf5::read_1d(offsets.get(), H5T_NATIVE_UINT64, 0, 1, &first);
  hdf5::read_1d(offsets.get(), H5T_NATIVE_UINT64, num_documents, 1, &last);
  if (first != 0) error("doc_offsets[0] is {}; expected 0", first);
  if (last != num_tokens) {
    error("doc_offsets[{}] is {}; expected num_tokens = {}", num_documents, last, num_tokens);
  }
}

void TokenDataset::Impl::check_range(const char* what, std::uint64_t begin, std::uint64_t count,
                                     std::uint64_t limit) const {
  if (begin > limit || count > limit - begin) {
    error("read of {} [{}, {}) is out of range (size {})", what, begin, begin + count, limit);
  }
}

const std::vector<std::uint64_t>& TokenDataset::Impl::sparse_index() const {
  if (!sparse_offsets.empty()) return sparse_offsets;
  const std::uint64_t count = num_documents / kSparseStride + 1;
  sparse_offsets.resize(count);
  hdf5::Handle space(H5Dget_space(offsets.get()), H5Sclose);
  const hsize_t start = 0;
  const hsize_t stride = kSparseStride;
  const hsize_t blocks = count;
  const hsize_t memory_size = count;
  hdf5::Handle memory_space(H5Screate_simple(1, &memory_size, nullptr), H5Sclose);
  if (H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, &stride, &blocks, nullptr) < 0 ||
      H5Dread(offsets.get(), H5T_NATIVE_UINT64, memory_space.get(), space.get(), H5P_DEFAULT,
              sparse_offsets.data()) < 0) {
    sparse_offsets.clear();
    error("cannot read the document index: {}", hdf5::take_error_detail());
  }
  try {
    check_ascending(sparse_offsets, 0, kSparseStride);
  } catch (...) {
    sparse_offsets.clear();
    throw;
  }
  return sparse_offsets;
}

std::uint64_t TokenDataset::Impl::sparse_block_of(std::uint64_t token) const {
  const auto& index = sparse_index();
  return static_cast<std::uint64_t>(std::lower_bound(index.begin(), index.end(), token) -
                                    index.begin());
}

void TokenDataset::Impl::verify_tokens() const {
  Xxh3Stream hash;
  std::vector<std::uint32_t> wide;
  std::vector<std::uint16_t> narrow;
  for (std::uint64_t begin = 0; begin < num_tokens; begin += kVerifyBlock) {
    const std::uint64_t count = std::min(kVerifyBlock, num_tokens - begin);
    std::uint64_t largest = 0;
    if (token_bits == 16) {
      narrow.resize(count);
      hdf5::read_1d(tokens.get(), H5T_NATIVE_UINT16, begin, count, narrow.data());
      hash_little_endian(hash, std::span<const std::uint16_t>(narrow));
      largest = *std::max_element(narrow.begin(), narrow.end());
    } else {
      wide.resize(count);
      hdf5::read_1d(tokens.get(), H5T_NATIVE_UINT32, begin, count, wide.data());
      hash_little_endian(hash, std::span<const std::uint32_t>(wide));
      largest = *std::max_element(wide.begin(), wide.end());
    }
    if (largest >= attributes.vocab_size) {
      error("token id {} in [{}, {}) is >= vocab_size {}", largest, begin, begin + count,
            attributes.vocab_size);
    }
  }
  if (to_hex(hash.digest()) != checksums.tokens) {
    error("/tokens checksum mismatch (stored {}, computed {}): the file is corrupt",
          checksums.tokens, to_hex(hash.digest()));
  }
}

void TokenDataset::Impl::verify_offsets() const {
  Xxh3Stream hash;
  std::vector<std::uint64_t> block;
  std::uint64_t previous = 0;
  const std::uint64_t total = num_documents + 1;
  for (std::uint64_t begin = 0; begin < total; begin += kVerifyBlock) {
    block.resize(std::min(kVerifyBlock, total - begin));
    hdf5::read_1d(offsets.get(), H5T_NATIVE_UINT64, begin, block.size(), block.data());
    hash_little_endian(hash, std::span<const std::uint64_t>(block));
    for (std::size_t i = 0; i < block.size(); ++i) {
      if (block[i] < previous || block[i] > num_tokens) {
        error("doc_offsets[{}] = {} breaks the order (previous {}, num_tokens {})", begin + i,
              block[i], previous, num_tokens);
      }
      previous = block[i];
    }
  }
  check_offset_ends();
  if (to_hex(hash.digest()) != checksums.doc_offsets) {
    error("/doc_offsets checksum mismatch (stored {}, computed {}): the file is corrupt",
          checksums.doc_offsets, to_hex(hash.digest()));
  }
}

std::uint64_t TokenDataset::Impl::verify_mask() const {
  Xxh3Stream hash;
  std::vector<std::uint8_t> block;
  std::uint64_t ones = 0;
  for (std::uint64_t begin = 0; begin < num_tokens; begin += kVerifyBlock) {
    block.resize(std::min(kVerifyBlock, num_tokens - begin));
    hdf5::read_1d(mask.get(), H5T_NATIVE_UINT8, begin, block.size(), block.data());
    hash.update(block.data(), block.size());
    const auto bad = std::find_if(block.begin(), block.end(), [](std::uint8_t value) { return value > 1; });
    if (bad != block.end()) {
      error("loss_mask[{}] = {}; expected 0 or 1", begin + static_cast<std::uint64_t>(bad - block.begin()),
            static_cast<int>(*bad));
    }
    ones += static_cast<std::uint64_t>(std::count(block.begin(), block.end(), std::uint8_t{1}));
  }
  if (to_hex(hash.digest()) != checksums.loss_mask) {
    error("/loss_mask checksum mismatch (stored {}, computed {}): the file is corrupt",
          checksums.loss_mask, to_hex(hash.digest()));
  }
  return ones;
}

void TokenDataset::Impl::check_ascending(std::span<const std::uint64_t> offsets_read,
                                         std::uint64_t first, std::uint64_t stride) const {
  const auto out_of_order = std::is_sorted_until(offsets_read.begin(), offsets_read.end());
  if (out_of_order != offsets_read.end()) {
    const auto index = static_cast<std::uint64_t>(out_of_order - offsets_read.begin());
    error("doc_offsets[{}] = {} breaks the order (previous {}); the file is corrupt (kiln info "
          "verifies it)",
          first + index * stride, *out_of_order, *(out_of_order - 1));
  }
}

TokenDataset TokenDataset::open(const fs::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::lock_guard lock(hdf5::library_mutex());
  impl->open_file();
  impl->read_attributes();
  impl->open_datasets();
  impl->check_offset_ends();
  return TokenDataset(std::move(impl));
}

TokenDataset::TokenDataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenDataset::TokenDataset(TokenDataset&&) noexcept = default;
TokenDataset& TokenDataset::operator=(TokenDataset&&) noexcept = default;
TokenDataset::~TokenDataset() = default;

const fs::path& TokenDataset::path() const { return impl_->path; }
const TokenDatasetAttributes& TokenDataset::attributes() const { return impl_->attributes; }
std::uint64_t TokenDataset::num_tokens() const { return impl_->num_tokens; }
std::uint64_t TokenDataset::num_documents() const { return impl_->num_documents; }
bool TokenDataset::has_loss_mask() const { return impl_->mask.valid(); }
int TokenDataset::token_bits() const { return impl_->token_bits; }
const TokenDatasetChecksums& TokenDataset::checksums() const { return impl_->checksums; }

void TokenDataset::read_tokens(std::uint64_t begin, std::span<std::uint32_t> out) const {
  impl_->check_range("/tokens", begin, out.size(), impl_->num_tokens);
  if (impl_->token_bits == 32) {
    hdf5::read_1d(impl_->tokens.get(), H5T_NATIVE_UINT32, begin, out.size(), out.data());
    return;
  }
  // Reading the stored uint16 and widening here is ~10x faster than letting HDF5 convert
  // during the read (its conversion path goes through a separate type-conversion buffer).
  thread_local std::vector<std::uint16_t> narrow;
  narrow.resize(out.size());
  hdf5::read_1d(impl_->tokens.get(), H5T_NATIVE_UINT16, begin, narrow.size(), narrow.data());
  std::copy(narrow.begin(), narrow.end(), out.begin());
}

void TokenDataset::read_loss_mask(std::uint64_t begin, std::span<std::uint8_t> out) const {
  if (!has_loss_mask()) impl_->error("read_loss_mask on a dataset without /loss_mask");
  impl_->check_range("/loss_mask", begin, out.size(), impl_->num_tokens);
  hdf5::read_1d(impl_->mask.get(), H5T_NATIVE_UINT8, begin, out.size(), out.data());
}

void TokenDataset::read_doc_offsets(std::uint64_t first, std::span<std::uint64_t> out) const {
  impl_->check_range("/doc_offsets", first, out.size(), impl_->num_documents + 1);
  hdf5::read_1d(impl_->offsets.get(), H5T_NATIVE_UINT64, first, out.size(), out.data());
}

std::vector<std::uint64_t> TokenDataset::document_starts_in(std::uint64_t begin,
                                                            std::uint64_t end) const {
  if (begin >= end) return {};
  impl_->check_range("document starts", begin, end - begin, impl_->num_tokens);
  std::lock_guard lock(hdf5::library_mutex());
  // One read of the doc_offsets between the blocks that hold the first document at or after
  // `begin` and the first at or after `end`; the answer is the part of it in [begin, end).
  const std::uint64_t first_block = impl_->sparse_block_of(begin);
  const std::uint64_t first = first_block == 0 ? 0 : (first_block - 1) * kSparseStride + 1;
  const std::uint64_t last =
      std::min(impl_->sparse_block_of(end) * kSparseStride, impl_->num_documents);
  std::vector<std::uint64_t> candidates(last - first + 1);
  read_doc_offsets(first, candidates);
  impl_->check_ascending(candidates, first, 1);
  // doc_offsets[num_documents] = num_tokens >= end, so the end marker never counts as a start.
  auto starts_begin = std::lower_bound(candidates.begin(), candidates.end(), begin);
  auto starts_end = std::lower_bound(starts_begin, candidates.end(), end);
  std::vector<std::uint64_t> starts(starts_begin, starts_end);
  // Only a foreign writer can store empty documents; their repeated starts are one boundary.
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  return starts;
}

VerifyReport TokenDataset::verify() const {
  std::lock_guard lock(hdf5::library_mutex());
  impl_->verify_offsets();
  impl_->verify_tokens();
  VerifyReport report;
  report.tokens_in_loss = has_loss_mask() ? impl_->verify_mask() : impl_->num_tokens;
  return report;
}

}  // namespace kiln::data
