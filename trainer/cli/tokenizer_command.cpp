// `kiln tokenizer encode|decode|train|info`: byte-level BPE tokenizers in the Hugging Face
// tokenizer.json format (DESIGN.md §8).
//
//   encode  text -> ids. Plain mode encodes the whole input (a file or stdin) as one text and
//           prints the ids space-separated on one line; --jsonl reads one {"text": ...} object
//           per line and writes {"ids": [...]} per line. Like `tokenizers`' encode(), the
//           post-processor's special tokens (e.g. Llama-3's BOS) are added unless --no-special.
//           Invalid UTF-8 is replaced by U+FFFD as Python's bytes.decode("utf-8",
//           errors="replace") does.
//   decode  space-separated ids -> the bytes they stand for, written raw to stdout.
//   train   learns a BPE from documents (txt, jsonl, jsonl.zst) and writes tokenizer.json.
//   info    vocabulary size, special tokens and content hash of a tokenizer.json.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/io/document_reader.hpp"
#include "data/tokenizer/bpe_trainer.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::cli {

namespace {

using tok::TokenId;
using tok::Tokenizer;

struct EncodeOptions {
  std::string tokenizer;
  std::string input;  // empty: stdin
  bool jsonl = false;
  std::string text_field = "text";
  bool no_special = false;
};

struct DecodeOptions {
  std::string tokenizer;
  std::string input;
  bool skip_special = false;
};

struct TrainOptions {
  std::vector<std::string> inputs;
  std::size_t vocab_size = 8192;
  std::vector<std::string> specials = {"<|endoftext|>"};
  std::string style = "gpt2";
  bool split_digits = false;
  std::size_t min_frequency = 2;
  std::string text_field = "text";
  int threads = 0;
  std::string out;
};

std::string read_all(const std::string& path) {
  if (path.empty() || path == "-") {
    std::string text;
    std::vector<char> block(1 << 20);
    std::size_t got = 0;
    while ((got = std::fread(block.data(), 1, block.size(), stdin)) > 0) {
      text.append(block.data(), got);
      // A pipe has no size to check up front: stop an endless one (< /dev/zero) at the limit.
      if (text.size() > kMaxWholeFileBytes) {
        fail("input '<stdin>' is over {} bytes, the limit for this kind of input", kMaxWholeFileBytes);
      }
    }
    if (std::ferror(stdin)) fail("read error on standard input");
    return text;
  }
  return read_text_file(path, "input");
}

void write_out(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) fail("write error on standard output");
}

void append_ids(std::string& out, const std::vector<TokenId>& ids, std::string_view separator) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += separator;
    out += std::to_string(ids[i]);
  }
}

void encode_jsonl(const Tokenizer& tokenizer, const EncodeOptions& options, const std::string& input) {
  const std::string source = options.input.empty() ? "<stdin>" : options.input;
  std::string out;
  std::size_t line_number = 0;
  std::size_t begin = 0;
  while (begin < input.size()) {
    std::size_t end = input.find('\n', begin);
    if (end == std::string::npos) end = input.size();
    const std::string_view line(input.data() + begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank line
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& error) {
      fail("{} line {}: malformed JSON: {}", source, line_number, error.what());
    }
    if (!record.is_object() || !record.contains(options.text_field) || !record[options.text_field].is_string()) {
      fail("{} line {}: expected an object with a string field '{}'", source, line_number, options.text_field);
    }
    out += "{\"ids\": [";
    append_ids(out, tokenizer.encode(record[options.text_field].get<std::string>(), !options.no_special), ", ");
    out += "]}\n";
    if (out.size() > (1U << 20)) {
      write_out(out);
      out.clear();
    }
  }
  write_out(out);
}

void run_encode(const EncodeOptions& options) {
  const Tokenizer tokenizer = Tokenizer::load(options.tokenizer);
  const std::string input = read_all(options.input);
  if (options.jsonl) {
    encode_jsonl(tokenizer, options, input);
    return;
  }
  std::string out;
  append_ids(out, tokenizer.encode(input, !options.no_special), " ");
  out += '\n';
  write_out(out);
}

std::vector<TokenId> parse_ids(const std::string& text, const std::string& source) {
  std::vector<TokenId> ids;
  std::size_t pos = 0;
  while (true) {
    pos = text.find_first_not_of(" \t\r\n", pos);
    if (pos == std::string::npos) break;
    std::size_t end = text.find_first_of(" \t\r\n", pos);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(pos, end - pos);
    const bool digits = word.size() <= 10 && word.find_first_not_of("0123456789") == std::string::npos;
    const unsigned long long value = digits ? std::stoull(word) : 0;
    if (!digits || value > 0xFFFFFFFFULL) {
      fail("{}: '{}' (token {}) is not a token id (a non-negative integer)", source, word.substr(0, 40), ids.size() + 1);
    }
    ids.push_back(static_cast<TokenId>(value));
    pos = end;
  }
  return ids;
}

void run_decode(const DecodeOptions& options) {
  const Tokenizer tokenizer = Tokenizer::load(options.tokenizer);
  const std::string source = options.input.empty() ? "<stdin>" : options.input;
  const auto ids = parse_ids(read_all(options.input), source);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= tokenizer.vocab_size() || !tokenizer.id_to_token(ids[i])) {
      fail("{}: token id {} (token {}) is out of range: the vocabulary of '{}' has ids 0..{}", source, ids[i], i + 1,
           options.tokenizer, tokenizer.vocab_size() - 1);
    }
  }
  write_out(tokenizer.decode(ids, options.skip_special));
}

tok::PreTokenizerStyle parse_style(const std::string& style) {
  if (style == "gpt2") return tok::PreTokenizerStyle::Gpt2;
  if (style == "llama3") return tok::PreTokenizerStyle::Llama3;
  fail("--style must be gpt2 or llama3, not '{}'", style);
}

void run_train(const TrainOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  tok::BpeTrainOptions train_options;
  train_options.vocab_size = options.vocab_size;
  train_options.special_tokens = options.specials;
  train_options.min_frequency = options.min_frequency;
  train_options.style = parse_style(options.style);
  train_options.split_digits = options.split_digits;
  train_options.threads = options.threads;
  tok::BpeTrainer trainer(train_options);

  std::vector<std::filesystem::path> inputs(options.inputs.begin(), options.inputs.end());
  data::ReaderOptions reader_options;
  reader_options.text_field = options.text_field;
  data::DocumentReader reader(inputs, reader_options);
  data::Document document;
  while (reader.next(document)) trainer.add_text(document.text);

  const Tokenizer tokenizer = trainer.train();
  tokenizer.save(options.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "kiln: trained %zu tokens on %llu documents (%.1f MB) in %.1f s -> %s\n",
               tokenizer.vocab_size(), static_cast<unsigned long long>(reader.report().documents),
               static_cast<double>(reader.report().bytes) / 1e6, seconds, options.out.c_str());
}

void run_info(const std::string& path) {
  const Tokenizer tokenizer = Tokenizer::load(path);
  nlohmann::json specials = nlohmann::json::array();
  for (const auto& token : tokenizer.added_tokens()) {
    specials.push_back({{"id", token.id}, {"content", token.content}, {"special", token.special}});
  }
  nlohmann::json info = {{"path", path},
                         {"vocab_size", tokenizer.vocab_size()},
                         {"added_tokens", specials},
                         {"eos_id", tokenizer.eos_id() ? nlohmann::json(*tokenizer.eos_id()) : nlohmann::json(nullptr)},
                         {"content_hash", to_hex(tokenizer.content_hash())}};
  write_out(info.dump(2) + "\n");
}

void add_encode(CLI::App& parent) {
  auto options = std::make_shared<EncodeOptions>();
  auto* cmd = parent.add_subcommand("encode", "Text to token ids (as tokenizers' encode(text).ids)");
  cmd->add_option("--tokenizer,-t", options->tokenizer, "tokenizer.json")->required();
  cmd->add_option("--input,-i", options->input, "Input file (default: stdin)");
  cmd->add_flag("--jsonl", options->jsonl, "One JSON object per line in, {\"ids\": [...]} per line out");
  cmd->add_option("--text-field", options->text_field, "JSONL field holding the text")->capture_default_str();
  cmd->add_flag("--no-special", options->no_special, "Do not add the post-processor's special tokens (e.g. BOS)");
  cmd->callback([options] { run_encode(*options); });
}

void add_decode(CLI::App& parent) {
  auto options = std::make_shared<DecodeOptions>();
  auto* cmd = parent.add_subcommand("decode", "Space-separated token ids to text (raw bytes on stdout)");
  cmd->add_option("--tokenizer,-t", options->tokenizer, "tokenizer.json")->required();
  cmd->add_option("--input,-i", options->input, "Input file (default: stdin)");
  cmd->add_flag("--skip-special", options->skip_special, "Leave special tokens out of the text");
  cmd->callback([options] { run_decode(*options); });
}

void add_train(CLI::App& parent) {
  auto options = std::make_shared<TrainOptions>();
  auto* cmd = parent.add_subcommand("train", "Learn a byte-level BPE tokenizer from documents");
  cmd->add_option("--input,-i", options->inputs, "Input files: .txt (one document each), .jsonl, .jsonl.zst")
      ->required()->expected(1, -1);
  cmd->add_option("--vocab-size", options->vocab_size, "Final vocabulary size, specials and 256 bytes included")
      ->required()->check(CLI::PositiveNumber);
  cmd->add_option("--special", options->specials, "Special tokens (they get the first ids)")
      ->capture_default_str()->expected(0, -1);
  cmd->add_option("--style", options->style, "Pre-tokenizer: gpt2 or llama3")
      ->capture_default_str()->check(CLI::IsMember({"gpt2", "llama3"}));
  cmd->add_flag("--split-digits", options->split_digits,
               "Every digit its own token (numbers spelled digit by digit, as Llama-1 did)");
  cmd->add_option("--min-frequency", options->min_frequency, "Stop when the best pair is rarer than this")
      ->capture_default_str();
  cmd->add_option("--text-field", options->text_field, "JSONL field holding the text")->capture_default_str();
  cmd->add_option("--threads", options->threads, "Threads counting words (0: all cores)")->capture_default_str();
  cmd->add_option("--out,-o", options->out, "Output tokenizer.json")->required();
  cmd->callback([options] { run_train(*options); });
}

void add_info(CLI::App& parent) {
  auto path = std::make_shared<std::string>();
  auto* cmd = parent.add_subcommand("info", "Vocabulary size, added tokens and content hash of a tokenizer.json");
  cmd->add_option("--tokenizer,-t", *path, "tokenizer.json")->required();
  cmd->callback([path] { run_info(*path); });
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
  auto* tokenizer = app.add_subcommand("tokenizer", "Encode, decode and train byte-level BPE tokenizers");
  tokenizer->require_subcommand(1);
  add_encode(*tokenizer);
  add_decode(*tokenizer);
  add_train(*tokenizer);
  add_info(*tokenizer);
}

}  // namespace kiln::cli
