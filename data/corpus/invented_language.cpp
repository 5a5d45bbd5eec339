#include "data/corpus/invented_language.hpp"

#include <fmt/format.h>

#include <set>
#include <string_view>

namespace kiln::data {

namespace {

// The English side: nouns (the first kAnimateNouns can be subjects), verbs with their
// present third-person and past forms, adjectives. Regular plurals (+s) only, so that the
// English of every sentence is unambiguous.
const std::vector<std::string> kNouns = {"dog", "cat", "bird", "farmer", "horse", "king", "girl", "boy",
                                         "goat", "teacher", "tree", "stone", "boat", "house", "apple", "river"};
constexpr int kAnimateNouns = 10;
struct Verb {
  const char* base;
  const char* third_person;
  const char* past;
};
const std::vector<Verb> kVerbs = {{"see", "sees", "saw"},          {"carry", "carries", "carried"},
                                  {"find", "finds", "found"},      {"follow", "follows", "followed"},
                                  {"watch", "watches", "watched"}, {"call", "calls", "called"},
                                  {"feed", "feeds", "fed"},        {"hold", "holds", "held"},
                                  {"want", "wants", "wanted"},     {"push", "pushes", "pushed"},
                                  {"like", "likes", "liked"},      {"paint", "paints", "painted"}};
const std::vector<std::string> kAdjectives = {"big", "small", "old", "young", "red", "brown", "happy", "quiet"};

constexpr std::string_view kConsonants = "ptkbdgmnlrsvzfh";
constexpr std::string_view kVowels = "aeiou";
constexpr std::string_view kCodas = "mnlrs";  // consonants that may close a syllable
const std::vector<std::string> kNameEndings = {"ish", "ese", "ian", "ic"};
const std::vector<std::string> kWordOrders = {"SOV", "SVO", "VSO", "VOS", "OSV", "OVS"};

std::string capitalised(std::string text) {
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 'a' + 'A');
  return text;
}

std::uint64_t text_hash(std::uint64_t salt, std::string_view text) {
  std::uint64_t hash = salt;
  for (const char c : text) hash = mix_seed(hash, static_cast<unsigned char>(c));
  return hash;
}

template <class T>
void shuffle(std::vector<T>& items, Rng& rng) {
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

// The sounds one language uses: a few consonants and vowels out of the alphabet's.
struct Phonology {
  std::string consonants, vowels, codas;

  static Phonology draw(Rng& rng) {
    std::vector<char> consonants(kConsonants.begin(), kConsonants.end());
    std::vector<char> vowels(kVowels.begin(), kVowels.end());
    shuffle(consonants, rng);
    shuffle(vowels, rng);
    Phonology sounds;
    sounds.consonants.assign(consonants.begin(), consonants.begin() + 7);
    sounds.vowels.assign(vowels.begin(), vowels.begin() + 4);
    for (const char c : sounds.consonants) {
      if (kCodas.find(c) != std::string_view::npos) sounds.codas += c;
    }
    return sounds;
  }

  char consonant(Rng& rng) const { return consonants[rng.below(consonants.size())]; }
  char vowel(Rng& rng) const { return vowels[rng.below(vowels.size())]; }

  std::string syllable(Rng& rng) const {
    std::string text{consonant(rng), vowel(rng)};
    if (!codas.empty() && rng.below(3) == 0) text += codas[rng.below(codas.size())];
    return text;
  }

  std::string word(Rng& rng, int syllables) const {
    std::string text;
    for (int i = 0; i < syllables; ++i) text += syllable(rng);
    return text;
  }
};

// Words nobody else in the language uses (a dictionary with two meanings for one word, or a
// word that is also an ending, would make translations ambiguous).
class WordMaker {
 public:
  explicit WordMaker(const Phonology& sounds) : sounds_(sounds) {}

  std::string content_word(Rng& rng) {
    while (true) {
      std::string word = sounds_.word(rng, rng.between(1, 3));
      if (word.size() >= 3 && taken_.insert(word).second) return word;
    }
  }
  // An ending: a vowel, optionally closed by a consonant ("-ek", "-u").
  std::string ending(Rng& rng, bool closed) {
    while (true) {
      std::string word{sounds_.vowel(rng)};
      if (closed) word += sounds_.consonant(rng);
      if (taken_.insert(word).second) return word;
    }
  }
  // A short particle word ("ka").
  std::string particle(Rng& rng) {
    while (true) {
      std::string word{sounds_.consonant(rng), sounds_.vowel(rng)};
      if (taken_.insert(word).second) return word;
    }
  }

 private:
  const Phonology& sounds_;
  std::set<std::string> taken_;
};

const char* role_name(char role) { return role == 'S' ? "subject" : role == 'V' ? "verb" : "object"; }

NounPhrase draw_noun_phrase(Rng& rng, int nouns) {
  NounPhrase phrase;
  phrase.noun = static_cast<int>(rng.below(static_cast<std::uint64_t>(nouns)));
  phrase.adjective = rng.below(2) == 0 ? static_cast<int>(rng.below(kAdjectives.size())) : -1;
  phrase.plural = rng.below(2) == 0;
  return phrase;
}

std::string english_noun_phrase(const NounPhrase& phrase) {
  std::string text = "the ";
  if (phrase.adjective >= 0) text += kAdjectives[static_cast<std::size_t>(phrase.adjective)] + " ";
  return text + kNouns[static_cast<std::size_t>(phrase.noun)] + (phrase.plural ? "s" : "");
}

std::string english_verb(const Sentence& sentence) {
  const Verb& verb = kVerbs[static_cast<std::size_t>(sentence.verb)];
  if (sentence.past) return verb.past;
  return sentence.subject.plural ? verb.base : verb.third_person;
}

}  // namespace

// ---- English sentences -----------------------------------------------------------------------

std::string english_sentence(const Sentence& sentence) {
  return capitalised(fmt::format("{} {} {}.", english_noun_phrase(sentence.subject), english_verb(sentence),
                                 english_noun_phrase(sentence.object)));
}

bool is_held_out_sentence(std::string_view english) { return text_hash(0x73656e74ULL, english) % 8 == 0; }

bool is_held_out_language(std::string_view description) { return text_hash(0x6c616e67ULL, description) % 8 == 0; }

Sentence draw_sentence(Rng& rng, bool held_out) {
  while (true) {
    Sentence sentence;
    sentence.subject = draw_noun_phrase(rng, kAnimateNouns);
    sentence.verb = static_cast<int>(rng.below(kVerbs.size()));
    sentence.past = rng.below(2) == 0;
    sentence.object = draw_noun_phrase(rng, static_cast<int>(kNouns.size()));
    if (sentence.object.noun == sentence.subject.noun) continue;  // "the dog sees the dog"
    if (is_held_out_sentence(english_sentence(sentence)) == held_out) return sentence;
  }
}

// ---- the language ----------------------------------------------------------------------------

InventedLanguage InventedLanguage::random(Rng& rng) {
  const Phonology sounds = Phonology::draw(rng);
  WordMaker words(sounds);
  InventedLanguage language;
  language.name_ = capitalised(sounds.word(rng, 2));  // two statements: the order of draws is fixed
  language.name_ += rng.pick(kNameEndings);
  for (std::size_t i = 0; i < kNouns.size(); ++i) language.nouns_.push_back(words.content_word(rng));
  for (std::size_t i = 0; i < kVerbs.size(); ++i) language.verbs_.push_back(words.content_word(rng));
  for (std::size_t i = 0; i < kAdjectives.size(); ++i) language.adjectives_.push_back(words.content_word(rng));
  const std::size_t entries = kNouns.size() + kVerbs.size() + kAdjectives.size();
  for (std::size_t i = 0; i < entries; ++i) language.dictionary_order_.push_back(static_cast<int>(i));
  shuffle(language.dictionary_order_, rng);
  language.word_order_ = rng.pick(kWordOrders);
  language.adjective_first_ = rng.below(2) == 0;
  language.plural_suffix_ = words.ending(rng, true);
  language.past_is_word_ = rng.below(2) == 0;
  language.past_marker_ = language.past_is_word_ ? words.particle(rng) : words.ending(rng, true);
  if (rng.below(2) == 0) language.object_suffix_ = words.ending(rng, rng.below(2) == 0);
  return language;
}

InventedLanguage InventedLanguage::draw(Rng& rng, bool held_out) {
  while (true) {
    InventedLanguage language = random(rng);
    if (language.forms_are_distinct() && language.held_out() == held_out) return language;
  }
}

// Every written form (a noun with or without its endings, a verb with or without the past
// ending, an adjective) belongs to one dictionary entry only: "tam" + "ek" must not spell the
// adjective "tamek", or a sentence of the language could be read two ways.
bool InventedLanguage::forms_are_distinct() const {
  std::set<std::string> forms;
  std::size_t written = 0;
  const auto add = [&](const std::string& form) {
    forms.insert(form);
    ++written;
  };
  for (const auto& noun : nouns_) {
    for (const auto& plural : {std::string(), plural_suffix_}) {
      add(noun + plural);
      if (!object_suffix_.empty()) add(noun + plural + object_suffix_);
    }
  }
  for (const auto& verb : verbs_) {
    add(verb);
    if (!past_is_word_) add(verb + past_marker_);
  }
  for (const auto& adjective : adjectives_) add(adjective);
  if (past_is_word_) add(past_marker_);
  return forms.size() == written;
}

bool InventedLanguage::held_out() const { return is_held_out_language(grammar_text() + dictionary_text()); }

std::string InventedLanguage::noun_phrase(const NounPhrase& phrase, bool is_object) const {
  std::string noun = nouns_[static_cast<std::size_t>(phrase.noun)];
  if (phrase.plural) noun += plural_suffix_;
  if (is_object) noun += object_suffix_;
  if (phrase.adjective < 0) return noun;
  const std::string& adjective = adjectives_[static_cast<std::size_t>(phrase.adjective)];
  return adjective_first_ ? adjective + " " + noun : noun + " " + adjective;
}

std::string InventedLanguage::verb_phrase(int verb, bool past) const {
  const std::string& word = verbs_[static_cast<std::size_t>(verb)];
  if (!past) return word;
  return past_is_word_ ? past_marker_ + " " + word : word + past_marker_;
}

std::string InventedLanguage::translate(const Sentence& sentence) const {
  std::string text;
  for (const char role : word_order_) {
    if (!text.empty()) text += ' ';
    if (role == 'S') text += noun_phrase(sentence.subject, false);
    if (role == 'V') text += verb_phrase(sentence.verb, sentence.past);
    if (role == 'O') text += noun_phrase(sentence.object, true);
  }
  return capitalised(text) + ".";
}

std::string InventedLanguage::grammar_text() const {
  std::vector<std::string> rules;
  rules.push_back(fmt::format("Word order: the {} first, then the {}, then the {}.", role_name(word_order_[0]),
                              role_name(word_order_[1]), role_name(word_order_[2])));
  rules.push_back(fmt::format("An adjective comes {} the noun it describes.", adjective_first_ ? "before" : "after"));
  rules.push_back(fmt::format("A plural noun takes the ending -{}.", plural_suffix_));
  rules.push_back(past_is_word_ ? fmt::format("The word \"{}\" before a verb puts it in the past tense; the present "
                                              "tense has no marker.", past_marker_)
                                : fmt::format("A verb in the past tense takes the ending -{}; the present tense has "
                                              "no ending.", past_marker_));
  if (!object_suffix_.empty()) {
    rules.push_back(fmt::format("The object noun takes the ending -{}, after any plural ending.", object_suffix_));
  }
  rules.push_back("There is no word for \"the\", and a verb does not change with its subject.");
  std::string text = "Grammar:\n";
  for (std::size_t i = 0; i < rules.size(); ++i) text += fmt::format("{}. {}\n", i + 1, rules[i]);
  return text;
}

std::string InventedLanguage::dictionary_text() const {
  std::string text = "Dictionary:\n";
  const int noun_count = static_cast<int>(kNouns.size());
  const int verb_count = static_cast<int>(kVerbs.size());
  for (const int entry : dictionary_order_) {
    if (entry < noun_count) {
      text += fmt::format("{} = {}\n", kNouns[static_cast<std::size_t>(entry)], nouns_[static_cast<std::size_t>(entry)]);
    } else if (entry < noun_count + verb_count) {
      const auto verb = static_cast<std::size_t>(entry - noun_count);
      text += fmt::format("{} ({}, {}) = {}\n", kVerbs[verb].base, kVerbs[verb].third_person, kVerbs[verb].past,
                          verbs_[verb]);
    } else {
      const auto adjective = static_cast<std::size_t>(entry - noun_count - verb_count);
      text += fmt::format("{} = {}\n", kAdjectives[adjective], adjectives_[adjective]);
    }
  }
  return text;
}

// ---- translation exercises ---------------------------------------------------------------------

namespace {

std::string example_block(const InventedLanguage& language, const Sentence& sentence) {
  return fmt::format("English: {}\n{}: {}\n\n", english_sentence(sentence), language.name(), language.translate(sentence));
}

}  // namespace

TranslationText make_translation_text(Rng& rng, std::size_t chars, bool held_out) {
  const InventedLanguage language = InventedLanguage::draw(rng, held_out);
  const Sentence query = draw_sentence(rng, held_out);
  const std::string english = english_sentence(query);
  const std::string translated = language.translate(query);
  const bool into_language = rng.below(2) == 0;

  const std::string head = fmt::format("{} is an invented language. Here are its grammar, its dictionary and some "
                                       "example translations.\n\n{}\n{}\nExamples:\n",
                                       language.name(), language.grammar_text(), language.dictionary_text());
  const std::string question = into_language
                                   ? fmt::format("Translate into {}.\nEnglish: {}\n{}:", language.name(), english, language.name())
                                   : fmt::format("Translate into English.\n{}: {}\nEnglish:", language.name(), translated);
  std::string examples;
  for (int count = 0; count < 2 || head.size() + examples.size() + question.size() < chars;) {
    const Sentence example = draw_sentence(rng, false);
    if (english_sentence(example) == english) continue;  // a training document's own question
    examples += example_block(language, example);
    ++count;
  }
  return {head + examples + question, " " + (into_language ? translated : english)};
}

}  // namespace kiln::data
