#include "data/curate/c4_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <vector>

#include "data/curate/text_units.hpp"
#include "trainer/core/error.hpp"

namespace kiln::curate {

namespace {

constexpr std::array<std::string_view, 6> kPolicyPhrases = {"terms of use", "privacy policy", "cookie policy",
                                                            "uses cookies", "use of cookies", "use cookies"};

std::string lowercase_ascii(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return lower;
}

// Removes "[digits]", "[edit]" and "[citation needed]" markers.
std::string remove_citations(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == '[') {
      std::size_t j = i + 1;
      while (j < line.size() && line[j] >= '0' && line[j] <= '9') ++j;
      if (j < line.size() && line[j] == ']') {
        i = j + 1;
        continue;
      }
      const std::string_view rest = line.substr(i);
      if (rest.starts_with("[edit]")) { i += 6; continue; }
      if (rest.starts_with("[citation needed]")) { i += 17; continue; }
    }
    out.push_back(line[i++]);
  }
  return out;
}

bool ends_with_terminal_punctuation(std::string_view line) {
  if (line.ends_with("...")) return false;
  return line.ends_with('.') || line.ends_with('?') || line.ends_with('!') || line.ends_with('"') ||
         line.ends_with('\'');
}

// A full stop that belongs to an abbreviation ends no sentence: one letter ("a.") or letters
// with inner dots ("U.S.", "e.g."), the reference tokenizer's commonest exceptions.
bool is_abbreviation_dot(std::string_view line, std::size_t dot) {
  const std::size_t space = line.find_last_of(" \t", dot);
  const std::string_view word = line.substr(space == std::string_view::npos ? 0 : space + 1,
                                            dot - (space == std::string_view::npos ? 0 : space + 1));
  if (word.empty()) return false;
  const bool letters_and_dots = std::all_of(word.begin(), word.end(), [](char c) {
    return c == '.' || ((c | 32) >= 'a' && (c | 32) <= 'z');
  });
  return letters_and_dots && word.back() != '.' && (word.size() == 1 || word.find('.') != std::string_view::npos);
}

// Sentences in a kept line: one, plus one for every sentence break, a terminal mark (with any
// closing quotes or brackets) followed by whitespace and then more words. Counting breaks,
// not marks, is the reference's way: "The U.S." is one sentence, "Go. Now." two.
std::size_t count_sentences(std::string_view line) {
  std::size_t sentences = 1;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c != '.' && c != '?' && c != '!') continue;
    if (c == '.' && is_abbreviation_dot(line, i)) continue;
    while (i + 1 < line.size() && (line[i + 1] == '.' || line[i + 1] == '?' || line[i + 1] == '!' ||
                                   line[i + 1] == '"' || line[i + 1] == '\'' || line[i + 1] == ')')) {
      ++i;
    }
    if (i + 1 == line.size() || (line[i + 1] != ' ' && line[i + 1] != '\t')) continue;
    const std::size_t next_word = line.find_first_not_of(" \t.?!\"')", i + 1);
    if (next_word != std::string_view::npos) ++sentences;
  }
  return sentences;
}

enum class LineVerdict { Keep, Remove, DropLorem, DropCurly };

LineVerdict judge_line(const std::string& line, std::size_t words, const C4Options& options) {
  if (options.filter_no_terminal_punct && !ends_with_terminal_punctuation(line)) return LineVerdict::Remove;
  if (options.min_words_per_line > 0 && words < static_cast<std::size_t>(options.min_words_per_line)) {
    return LineVerdict::Remove;
  }
  const std::string lower = lowercase_ascii(line);
  if (options.filter_lorem_ipsum && lower.find("lorem ipsum") != std::string::npos) return LineVerdict::DropLorem;
  if (options.filter_javascript && lower.find("javascript") != std::string::npos) return LineVerdict::Remove;
  if (options.filter_curly_bracket && line.find('{') != std::string::npos) return LineVerdict::DropCurly;
  if (options.filter_policy) {
    for (std::string_view phrase : kPolicyPhrases) {
      if (lower.find(phrase) != std::string::npos) return LineVerdict::Remove;
    }
  }
  return LineVerdict::Keep;
}

bool has_overlong_word(const std::vector<std::string_view>& words, int max_length) {
  if (max_length <= 0) return false;
  return std::any_of(words.begin(), words.end(), [&](std::string_view word) {
    return code_points(word) > static_cast<std::size_t>(max_length);
  });
}

}  // namespace

namespace {

// Lowercased ASCII words of `text`: runs of letters, digits and non-ASCII bytes.
std::vector<std::string> lowercase_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || byte >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(byte)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

}  // namespace

BadWords::BadWords(const C4Options& options) {
  for (const auto& entry : options.bad_words) add(entry);
  if (options.bad_words_file.empty()) return;
  std::ifstream in(options.bad_words_file);
  if (!in) fail("c4.bad_words_file: cannot read '{}'", options.bad_words_file);
  for (std::string line; std::getline(in, line);) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    add(line);
  }
}

void BadWords::add(std::string_view entry) {
  const auto words = lowercase_words(entry);
  if (words.empty()) return;
  if (words.size() == 1) {
    words_.insert(words.front());
    return;
  }
  std::string phrase = " ";
  for (const auto& word : words) phrase += word + " ";
  phrases_.push_back(std::move(phrase));
}

bool BadWords::matches(std::string_view text) const {
  if (empty()) return false;
  const auto words = lowercase_words(text);
  for (const auto& word : words) {
    if (words_.count(word)) return true;
  }
  if (phrases_.empty()) return false;
  std::string joined = " ";
  for (const auto& word : words) joined += word + " ";
  return std::any_of(phrases_.begin(), phrases_.end(),
                     [&](const std::string& phrase) { return joined.find(phrase) != std::string::npos; });
}

C4Result c4_apply(std::string_view text, const C4Options& options, const BadWords* bad_words) {
  thread_local std::vector<std::string_view> lines;
  thread_local std::vector<std::string_view> words;
  split_python_lines(text, lines);  // blank lines have no terminal punctuation: removed
  C4Result result;
  std::size_t sentences = 0;
  for (std::string_view raw : lines) {
    const std::string_view stripped = strip(raw);
    split_whitespace(stripped, words);
    if (has_overlong_word(words, options.max_word_length)) {
      ++result.lines_removed;
      continue;
    }
    const std::string line = options.remove_citations ? remove_citations(stripped) : std::string(stripped);
    switch (judge_line(line, words.size(), options)) {
      case LineVerdict::Remove: ++result.lines_removed; continue;
      case LineVerdict::DropLorem: result.reason = "c4_lorem_ipsum"; return result;
      case LineVerdict::DropCurly: result.reason = "c4_curly_bracket"; return result;
      case LineVerdict::Keep: break;
    }
    sentences += count_sentences(line);
    if (!result.text.empty()) result.text.push_back('\n');
    result.text += line;
  }
  result.text = std::string(strip(result.text));
  if (options.min_num_sentences > 0 && sentences < static_cast<std::size_t>(options.min_num_sentences)) {
    result.reason = "c4_too_few_sentences";
  } else if (bad_words && bad_words->matches(result.text)) {
    result.reason = "c4_bad_words";
  }
  return result;
}

}  // namespace kiln::curate
