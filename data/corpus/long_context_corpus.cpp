#include "data/corpus/long_context_corpus.hpp"

#include <algorithm>
#include <charconv>

#include "data/corpus/invented_language.hpp"
#include "data/corpus/passkey_task.hpp"
#include "trainer/core/error.hpp"

namespace kiln::data {

namespace {

constexpr std::uint64_t kMinimumLength = 100;
constexpr std::uint64_t kShortestDocument = 400;

// Task streams are salted apart from document streams, so a task never shares its random
// draws with a training document of the same index.
Rng task_rng(std::string_view kind, std::uint64_t context_chars, std::uint64_t index, std::uint64_t seed) {
  const std::uint64_t kind_salt = kind == kPasskeyKind ? 0x706b7461736bULL : 0x6c6e7461736bULL;
  return Rng(mix_seed(mix_seed(seed, kind_salt, context_chars), index));
}

std::uint64_t parse_length(std::string_view entry) {
  const bool thousands = !entry.empty() && (entry.back() == 'k' || entry.back() == 'K');
  const std::string_view digits = thousands ? entry.substr(0, entry.size() - 1) : entry;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) {
    fail("--long-context: '{}' is not a length; expected a number of characters such as 4000 or 4k", entry);
  }
  return thousands ? value * 1000 : value;
}

}  // namespace

CorpusTask long_context_task(std::string_view kind, std::uint64_t context_chars, std::uint64_t index,
                             std::uint64_t seed) {
  Rng rng = task_rng(kind, context_chars, index, seed);
  CorpusTask task;
  task.kind = std::string(kind);
  task.context_chars = context_chars;
  if (kind == kPasskeyKind) {
    const PasskeyText text = make_passkey_text(rng, context_chars, /*held_out=*/true);
    task.prompt = text.prompt;
    task.answer = text.answer;
    task.depth = text.depth;
  } else if (kind == kLanguageKind) {
    const TranslationText text = make_translation_text(rng, context_chars, /*held_out=*/true);
    task.prompt = text.prompt;
    task.answer = text.answer;
  } else {
    fail("no long-context task kind '{}' (kinds: {}, {})", kind, kPasskeyKind, kLanguageKind);
  }
  return task;
}

bool is_long_context_document(std::uint64_t index, std::uint64_t seed, int percent) {
  return percent > 0 && mix_seed(seed, 0x6c63646f63ULL, index) % 100 < static_cast<std::uint64_t>(percent);
}

CorpusDocument long_context_document(std::uint64_t index, std::uint64_t seed, std::uint64_t max_chars) {
  Rng rng(mix_seed(seed, 0x6c63747261696eULL, index));
  const bool passkey = rng.below(2) == 0;
  const std::uint64_t low = std::min(kShortestDocument, max_chars);
  const auto chars = static_cast<std::size_t>(low + rng.below(max_chars - low + 1));
  CorpusDocument document{index, std::string(passkey ? kPasskeyKind : kLanguageKind), {}};
  if (passkey) {
    const PasskeyText text = make_passkey_text(rng, chars, /*held_out=*/false);
    document.text = text.prompt + text.answer + "\n";
  } else {
    const TranslationText text = make_translation_text(rng, chars, /*held_out=*/false);
    document.text = text.prompt + text.answer + "\n";
  }
  return document;
}

std::vector<std::uint64_t> parse_context_lengths(std::string_view text) {
  std::vector<std::uint64_t> lengths;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::uint64_t length = parse_length(text.substr(0, comma));
    if (length < kMinimumLength) {
      fail("--long-context: {} characters is too short for a long-context task; expected at least {}", length,
           kMinimumLength);
    }
    if (std::find(lengths.begin(), lengths.end(), length) != lengths.end()) {
      fail("--long-context: {} is listed twice", length);
    }
    lengths.push_back(length);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return lengths;
}

}  // namespace kiln::data
