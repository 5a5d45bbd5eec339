// The long-context tasks and documents of the built-in corpus: passkeys and invented
// languages are well formed, answerable from the prompt alone, deterministic, and their
// held-out keys, languages and sentences never reach a training document.
#include "data/corpus/long_context_corpus.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "data/corpus/filler_text.hpp"
#include "data/corpus/invented_language.hpp"
#include "data/corpus/passkey_task.hpp"
#include "trainer/core/error.hpp"

namespace kiln::data {
namespace {

// ---- a reader of the prompt: translates using only what the prompt states ------------------
// It knows English (which dictionary words are adjectives, that plurals end in "s"), as a
// model is expected to; everything about the language it reads from the grammar and the
// dictionary. If it gets every answer right, the prompt says all a model needs.

const std::set<std::string> kEnglishAdjectives = {"big", "small", "old", "young", "red", "brown", "happy", "quiet"};

std::string after(const std::string& text, const std::string& marker) {
  const auto at = text.find(marker);
  return at == std::string::npos ? "" : text.substr(at + marker.size());
}

std::string first_match(const std::string& text, const std::string& pattern) {
  std::smatch match;
  return std::regex_search(text, match, std::regex(pattern)) ? match[1].str() : "";
}

std::vector<std::string> words_of(std::string sentence) {
  if (!sentence.empty() && sentence.back() == '.') sentence.pop_back();
  if (!sentence.empty()) sentence[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(sentence[0])));
  std::istringstream in(sentence);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::string sentence_of(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : " ") + word;
  text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  return text + ".";
}

struct Phrase {
  std::string noun, adjective;  // English
  bool plural = false;
};

struct Reader {
  std::string name, order, plural, past_word, past_suffix, object_suffix;
  bool adjective_first = false;
  std::map<std::string, std::string> word;            // English base form -> the language's word
  std::map<std::string, std::string> english;          // the language's word -> English base form
  std::map<std::string, std::array<std::string, 3>> verb_forms;  // base -> base, third, past

  explicit Reader(const std::string& prompt) {
    name = prompt.substr(0, prompt.find(' '));
    std::smatch match;
    std::regex_search(prompt, match, std::regex(R"(Word order: the (\w+) first, then the (\w+), then the (\w+)\.)"));
    for (int i = 1; i <= 3; ++i) order += static_cast<char>(std::toupper(match[i].str()[0]));
    adjective_first = first_match(prompt, R"(An adjective comes (\w+) the noun)") == "before";
    plural = first_match(prompt, R"(A plural noun takes the ending -(\w+)\.)");
    past_word = first_match(prompt, R"re(The word "(\w+)" before a verb puts it in the past tense)re");
    past_suffix = first_match(prompt, R"(A verb in the past tense takes the ending -(\w+);)");
    object_suffix = first_match(prompt, R"(The object noun takes the ending -(\w+),)");
    std::istringstream dictionary(after(prompt, "Dictionary:\n"));
    const std::regex verb_entry(R"((\w+) \((\w+), (\w+)\) = (\w+))"), entry(R"((\w+) = (\w+))");
    for (std::string line; std::getline(dictionary, line) && !line.empty();) {
      if (std::regex_match(line, match, verb_entry)) {
        verb_forms[match[1]] = {match[1], match[2], match[3]};
        word[match[1]] = match[4];
        english[match[4]] = match[1];
      } else if (std::regex_match(line, match, entry)) {
        word[match[1]] = match[2];
        english[match[2]] = match[1];
      }
    }
  }

  // ---- English -> the language
  Phrase english_phrase(const std::vector<std::string>& words) const {  // "the [adj] noun[s]"
    Phrase phrase;
    phrase.adjective = words.size() == 3 ? words[1] : "";
    phrase.noun = words.back();
    if (!word.count(phrase.noun)) {
      phrase.noun.pop_back();
      phrase.plural = true;
    }
    return phrase;
  }

  std::string phrase_in_language(const Phrase& phrase, bool object) const {
    std::string noun = word.at(phrase.noun) + (phrase.plural ? plural : "") + (object ? object_suffix : "");
    if (phrase.adjective.empty()) return noun;
    const std::string& adjective = word.at(phrase.adjective);
    return adjective_first ? adjective + " " + noun : noun + " " + adjective;
  }

  std::string into_language(const std::string& sentence) const {
    const auto words = words_of(sentence);
    std::size_t verb_at = 1;
    std::string verb;
    bool past = false;
    for (; verb_at < words.size(); ++verb_at) {
      for (const auto& [base, forms] : verb_forms) {
        if (words[verb_at] == forms[1] || words[verb_at] == forms[2] || words[verb_at] == forms[0]) {
          verb = base;
          past = words[verb_at] == forms[2];
        }
      }
      if (!verb.empty()) break;
    }
    const Phrase subject = english_phrase({words.begin(), words.begin() + static_cast<std::ptrdiff_t>(verb_at)});
    const Phrase object = english_phrase({words.begin() + static_cast<std::ptrdiff_t>(verb_at + 1), words.end()});
    std::vector<std::string> parts;
    for (const char role : order) {
      if (role == 'S') parts.push_back(phrase_in_language(subject, false));
      if (role == 'O') parts.push_back(phrase_in_language(object, true));
      if (role == 'V') {
        if (past && !past_word.empty()) parts.push_back(past_word + " " + word.at(verb));
        else parts.push_back(word.at(verb) + (past ? past_suffix : ""));
      }
    }
    return sentence_of(parts);
  }

  // ---- the language -> English
  // The English of one written noun: its stem with any plural and object endings taken off.
  bool read_noun(const std::string& form, Phrase& phrase) const {
    for (const bool with_plural : {false, true}) {
      for (const bool with_object : {false, true}) {
        if (with_object && object_suffix.empty()) continue;
        const std::string ending = (with_plural ? plural : "") + (with_object ? object_suffix : "");
        if (form.size() <= ending.size() || form.compare(form.size() - ending.size(), ending.size(), ending) != 0) continue;
        const auto stem = english.find(form.substr(0, form.size() - ending.size()));
        if (stem == english.end() || kEnglishAdjectives.count(stem->second) || verb_forms.count(stem->second)) continue;
        phrase.noun = stem->second;
        phrase.plural = with_plural;
        return true;
      }
    }
    return false;
  }

  // The verb's word when `form` is a verb with the past ending, else "".
  std::string past_stem(const std::string& form) const {
    if (past_suffix.empty() || form.size() <= past_suffix.size() || !form.ends_with(past_suffix)) return "";
    const std::string stem = form.substr(0, form.size() - past_suffix.size());
    return english.count(stem) && verb_forms.count(english.at(stem)) ? stem : "";
  }

  std::string from_language(const std::string& sentence) const {
    std::vector<Phrase> phrases;
    std::string verb;
    bool past = false;
    std::string pending_adjective;
    for (const auto& form : words_of(sentence)) {
      if (form == past_word) {
        past = true;
      } else if (english.count(form) && verb_forms.count(english.at(form))) {
        verb = english.at(form);
      } else if (const std::string stem = past_stem(form); !stem.empty()) {
        verb = english.at(stem);
        past = true;
      } else if (english.count(form) && kEnglishAdjectives.count(english.at(form))) {
        if (adjective_first) {
          pending_adjective = english.at(form);
        } else if (phrases.empty()) {
          ADD_FAILURE() << "an adjective before any noun in " << sentence;
          return "";
        } else {
          phrases.back().adjective = english.at(form);
        }
      } else {
        Phrase phrase;
        EXPECT_TRUE(read_noun(form, phrase)) << form << " in " << sentence;
        phrase.adjective = pending_adjective;
        pending_adjective.clear();
        phrases.push_back(phrase);
      }
    }
    if (phrases.size() != 2 || !verb_forms.count(verb)) {
      ADD_FAILURE() << "no subject, object and verb in " << sentence;
      return "";
    }
    const bool subject_first = order.find('S') < order.find('O');
    const Phrase& subject = phrases[subject_first ? 0 : 1];
    const Phrase& object = phrases[subject_first ? 1 : 0];
    const auto& forms = verb_forms.at(verb);
    const std::string verb_text = past ? forms[2] : subject.plural ? forms[0] : forms[1];
    const auto english_phrase = [](const Phrase& phrase) {
      return "the " + (phrase.adjective.empty() ? "" : phrase.adjective + " ") + phrase.noun + (phrase.plural ? "s" : "");
    };
    return sentence_of(words_of(english_phrase(subject) + " " + verb_text + " " + english_phrase(object)));
  }

  // The answer to the prompt's question, worked out from the prompt alone.
  std::string answer(const std::string& prompt) const {
    const std::string question = after(prompt, "Translate into ");
    if (question.rfind("English.", 0) == 0) {
      return " " + from_language(first_match(question, name + R"(: ([^\n]+)\n)"));
    }
    return " " + into_language(first_match(question, R"(English: ([^\n]+)\n)"));
  }
};

// Every "English: X\nName: Y" example of the prompt, and the question's sentence.
std::vector<std::pair<std::string, std::string>> examples_of(const std::string& prompt, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> examples;
  const std::string block = after(prompt, "Examples:\n");
  const std::regex pair("English: ([^\\n]+)\\n" + name + ": ([^\\n]+)\\n\\n");
  for (auto it = std::sregex_iterator(block.begin(), block.end(), pair); it != std::sregex_iterator(); ++it) {
    examples.emplace_back((*it)[1], (*it)[2]);
  }
  return examples;
}

// The grammar and dictionary exactly as the prompt prints them (what is_held_out_language reads).
std::string description_of(const std::string& prompt) {
  // "...\n\nGrammar:\n<rules>\n\nDictionary:\n<entries>\n\nExamples:\n": each section ends in
  // its own newline, and one more line break separates it from the next.
  const auto grammar = prompt.find("Grammar:\n");
  const auto dictionary = prompt.find("\nDictionary:\n") + 1;
  const auto examples = prompt.find("\nExamples:\n");
  return prompt.substr(grammar, dictionary - 1 - grammar) + prompt.substr(dictionary, examples - dictionary);
}

// Every English sentence of a prompt or document: examples, and the question or its answer.
std::vector<std::string> english_sentences(const std::string& text) {
  std::vector<std::string> sentences;
  const std::regex line("English: ([^\\n]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator(); ++it) {
    sentences.push_back((*it)[1]);
  }
  return sentences;
}

std::string question_sentence(const std::string& prompt) {
  const std::string question = after(prompt, "Translate into ");
  return first_match(question, R"(\n[^:\n]+: ([^\n]+)\n)");
}

// ---- tasks ------------------------------------------------------------------------------------

TEST(LongContextCorpus, TasksAreAFunctionOfKindLengthIndexAndSeed) {
  for (const auto kind : {kPasskeyKind, kLanguageKind}) {
    const auto task = long_context_task(kind, 3000, 5, 1);
    EXPECT_EQ(task.prompt, long_context_task(kind, 3000, 5, 1).prompt);
    EXPECT_EQ(task.answer, long_context_task(kind, 3000, 5, 1).answer);
    EXPECT_NE(task.prompt, long_context_task(kind, 3000, 6, 1).prompt);
    EXPECT_NE(task.prompt, long_context_task(kind, 3000, 5, 2).prompt);
    EXPECT_EQ(task.kind, std::string(kind));
    EXPECT_EQ(task.context_chars, 3000u);
  }
  EXPECT_EQ(long_context_document(3, 1, 2000).text, long_context_document(3, 1, 2000).text);
  EXPECT_THROW(long_context_task("haystack", 1000, 0, 1), Error);
}

TEST(LongContextCorpus, PromptsHaveAboutTheLengthAskedFor) {
  for (const auto kind : {kPasskeyKind, kLanguageKind}) {
    for (const std::uint64_t length : {2000u, 8000u, 30000u}) {
      for (std::uint64_t i = 0; i < 5; ++i) {
        const auto task = long_context_task(kind, length, i, 1);
        EXPECT_GE(task.prompt.size(), length) << kind;
        EXPECT_LE(task.prompt.size(), length + 250) << kind;  // one sentence or one example over
        EXPECT_EQ(task.answer[0], ' ');
        EXPECT_NE(task.prompt.back(), ' ');
        EXPECT_EQ(task.answer.find('\n'), std::string::npos);
      }
    }
  }
}

TEST(LongContextCorpus, PasskeyIsTheOnlyNumberAndSitsAtVaryingDepths) {
  const std::regex number(R"(\d+)");
  std::vector<double> depths;
  for (std::uint64_t i = 0; i < 40; ++i) {
    const auto task = long_context_task(kPasskeyKind, 4000, i, 1);
    const std::string key = task.answer.substr(1);
    EXPECT_TRUE(std::regex_match(key, std::regex(R"(\d{5})"))) << key;
    EXPECT_TRUE(is_held_out_passkey(std::stoi(key)));
    std::vector<std::string> numbers;
    for (auto it = std::sregex_iterator(task.prompt.begin(), task.prompt.end(), number); it != std::sregex_iterator(); ++it) {
      numbers.push_back(it->str());
    }
    EXPECT_EQ(numbers, std::vector<std::string>{key});
    EXPECT_NE(task.prompt.find("The pass key is " + key + ". Remember it."), std::string::npos);
    EXPECT_TRUE(task.prompt.ends_with("\n\nWhat is the pass key? The pass key is"));
    ASSERT_TRUE(task.depth.has_value());
    // The recorded depth is where the key really is, as a share of the filler.
    const double at = static_cast<double>(task.prompt.find("The pass key is " + key)) / static_cast<double>(task.prompt.size());
    EXPECT_NEAR(*task.depth, at, 0.1);
    depths.push_back(*task.depth);
  }
  EXPECT_LT(*std::min_element(depths.begin(), depths.end()), 0.15);
  EXPECT_GT(*std::max_element(depths.begin(), depths.end()), 0.85);
}

TEST(LongContextCorpus, FillerIsVariedProseWithoutDigits) {
  Rng rng(3);
  const auto sentences = filler_sentences(rng, 20000);
  const std::set<std::string> distinct(sentences.begin(), sentences.end());
  EXPECT_GT(distinct.size(), sentences.size() * 9 / 10);
  for (const auto& sentence : sentences) {
    EXPECT_TRUE(std::regex_match(sentence, std::regex(R"([A-Z][A-Za-z' ,]+\.)"))) << sentence;
  }
  const std::string text = paragraphs_of(sentences, rng);
  EXPECT_NE(text.find("\n\n"), std::string::npos);
  EXPECT_EQ(text.find("\n\n\n"), std::string::npos);
}

TEST(LongContextCorpus, EveryTranslationFollowsFromThePromptAlone) {
  int into_language = 0, into_english = 0;
  for (std::uint64_t i = 0; i < 120; ++i) {
    const auto task = long_context_task(kLanguageKind, i % 2 ? 1000 : 3000, i, 1);
    const Reader reader(task.prompt);
    ASSERT_EQ(reader.word.size(), 36u) << task.prompt;
    EXPECT_EQ(reader.answer(task.prompt), task.answer) << task.prompt;
    const auto examples = examples_of(task.prompt, reader.name);
    EXPECT_GE(examples.size(), 2u);
    for (const auto& [english, translated] : examples) {
      EXPECT_EQ(reader.into_language(english), translated);
      EXPECT_EQ(reader.from_language(translated), english);
    }
    (task.answer.find(" The ") == 0 ? into_english : into_language) += 1;
  }
  EXPECT_GT(into_language, 30);
  EXPECT_GT(into_english, 30);
}

TEST(LongContextCorpus, LanguagesDifferInGrammarAndWords) {
  std::set<std::string> orders, names, dogs;
  std::set<bool> adjective_first, past_as_word, object_marked;
  for (std::uint64_t i = 0; i < 60; ++i) {
    const auto task = long_context_task(kLanguageKind, 1000, i, 7);
    const Reader reader(task.prompt);
    orders.insert(reader.order);
    names.insert(reader.name);
    dogs.insert(reader.word.at("dog"));
    adjective_first.insert(reader.adjective_first);
    past_as_word.insert(!reader.past_word.empty());
    object_marked.insert(!reader.object_suffix.empty());
  }
  EXPECT_EQ(orders.size(), 6u);
  EXPECT_GT(names.size(), 55u);
  EXPECT_GT(dogs.size(), 55u);
  EXPECT_EQ(adjective_first.size(), 2u);
  EXPECT_EQ(past_as_word.size(), 2u);
  EXPECT_EQ(object_marked.size(), 2u);
}

// ---- held out from training ------------------------------------------------------------------

TEST(LongContextCorpus, HeldOutKeysLanguagesAndSentencesNeverAppearInTrainingDocuments) {
  std::string training;
  std::map<std::string, int> kinds;
  const std::regex stated_key(R"(The pass key is (\d+)\.)");
  for (std::uint64_t i = 0; i < 600; ++i) {
    const auto document = long_context_document(i, 1, 3000);
    ++kinds[document.kind];
    for (auto it = std::sregex_iterator(document.text.begin(), document.text.end(), stated_key); it != std::sregex_iterator(); ++it) {
      EXPECT_FALSE(is_held_out_passkey(std::stoi((*it)[1])));
    }
    if (document.kind == kLanguageKind) {  // a training document answers its own question
      const auto last_line = document.text.rfind('\n', document.text.size() - 2);
      const std::string prompt = document.text.substr(0, last_line + 1 + document.text.substr(last_line + 1).find(':') + 1);
      EXPECT_EQ(Reader(prompt).answer(prompt) + "\n", document.text.substr(prompt.size()));
      EXPECT_FALSE(is_held_out_language(description_of(prompt)));
      for (const auto& sentence : english_sentences(document.text)) EXPECT_FALSE(is_held_out_sentence(sentence)) << sentence;
    }
    training += document.text;
  }
  EXPECT_GT(kinds["passkey"], 250);
  EXPECT_GT(kinds["language"], 250);

  for (std::uint64_t i = 0; i < 60; ++i) {
    const auto passkey = long_context_task(kPasskeyKind, i % 2 ? 1000 : 3000, i, 1);
    EXPECT_EQ(training.find(passkey.answer.substr(1)), std::string::npos) << passkey.answer;

    const auto language = long_context_task(kLanguageKind, i % 2 ? 1000 : 3000, i, 1);
    const std::string dictionary = after(language.prompt, "Dictionary:\n");
    EXPECT_EQ(training.find(dictionary.substr(0, dictionary.find("\n\n"))), std::string::npos);
    const std::string asked = question_sentence(language.prompt);
    const std::string answer = language.answer.substr(1);
    EXPECT_TRUE(is_held_out_language(description_of(language.prompt)));
    EXPECT_TRUE(is_held_out_sentence(answer.starts_with("The ") ? answer : asked));
    for (const auto& sentence : {asked, answer}) {
      EXPECT_EQ(training.find(sentence), std::string::npos) << sentence;
    }
    // Nor among the prompt's own examples: the question's sentence is in the prompt once,
    // where it is asked, and the answer not at all.
    EXPECT_EQ(language.prompt.find(asked), language.prompt.rfind(asked)) << asked;
    EXPECT_EQ(language.prompt.find(answer), std::string::npos) << answer;
  }
}

TEST(LongContextCorpus, DocumentShareFollowsThePercentAndLeavesTheRestUnchanged) {
  int chosen = 0;
  for (std::uint64_t i = 0; i < 4000; ++i) {
    EXPECT_FALSE(is_long_context_document(i, 1, 0));
    chosen += is_long_context_document(i, 1, 10) ? 1 : 0;
  }
  EXPECT_GT(chosen, 320);
  EXPECT_LT(chosen, 480);
}

TEST(LongContextCorpus, ParsesContextLengths) {
  EXPECT_EQ(parse_context_lengths("1000,4k,16K"), (std::vector<std::uint64_t>{1000, 4000, 16000}));
  EXPECT_EQ(parse_context_lengths("2048"), (std::vector<std::uint64_t>{2048}));
  for (const char* bad : {"", "1000,", "abc", "4kk", "-5", "50", "1000,1000", "1e3"}) {
    EXPECT_THROW(parse_context_lengths(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace kiln::data
