#pragma once
// In-context language learning: a fictional language drawn from a seed (its sounds, a word
// for each of 36 English words, and a grammar of five or six rules), written out in the
// prompt as rules and a dictionary, then example translations, then one new sentence to
// translate, into the language or out of it. The language exists nowhere but in the prompt,
// so a model can only answer by reading it, and the longer the prompt (more examples
// between the dictionary and the question), the further back it must read.
//
//   Tavorish is an invented language. ...
//   Grammar:
//   1. Word order: verb, then subject, then object.
//   2. An adjective comes after the noun it describes.
//   3. A plural noun takes the ending -ek.
//   4. The word "ka" before a verb puts it in the past tense; the present tense has no marker.
//   ...
//   Dictionary:
//   dog = tamo
//   see (sees, saw) = vanu
//   ...
//   Examples:
//   English: The big dog saw the cats.
//   Tavorish: Ka vanu tamo sor mirek.
//   ...
//   Translate into Tavorish.
//   English: The old farmer sees the small houses.
//   Tavorish:                                            (prompt ends here; answer follows)
//
// Held out: about one language in eight (by a hash of its grammar and dictionary) and one
// English sentence in eight (by a hash of its text) are reserved for tasks. Training documents
// use only the others, so a task's language and the sentence it asks for never appear in
// training, and never among the prompt's own examples either.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/core/random.hpp"

namespace kiln::data {

// A sentence's meaning: subject, verb (present or past), object. Indices into the lexicon
// (english_sentence names them); adjective -1 = none.
struct NounPhrase {
  int noun = 0;
  int adjective = -1;
  bool plural = false;
};
struct Sentence {
  NounPhrase subject;
  int verb = 0;
  bool past = false;
  NounPhrase object;
};

// "The big dog saw the cats." (English agreement: "sees" after a singular subject).
std::string english_sentence(const Sentence& sentence);
// True for the English sentences reserved to held-out tasks (a hash of the text, so a test
// can check any sentence it reads in a prompt or document).
bool is_held_out_sentence(std::string_view english);
// True for the languages reserved to held-out tasks: a hash of the grammar and dictionary
// as the prompt prints them (grammar_text() + dictionary_text()).
bool is_held_out_language(std::string_view description);
// A sentence with an animate subject, reserved (held_out) or not.
Sentence draw_sentence(Rng& rng, bool held_out);

class InventedLanguage {
 public:
  // A language reserved to held-out tasks (held_out) or free for training documents.
  static InventedLanguage draw(Rng& rng, bool held_out);

  const std::string& name() const { return name_; }
  // The sentence in this language: capitalised, ending in a full stop.
  std::string translate(const Sentence& sentence) const;
  // The numbered grammar rules and the dictionary (one "english = word" line per word, in a
  // drawn order), each section headed and ending in a newline.
  std::string grammar_text() const;
  std::string dictionary_text() const;
  // is_held_out_language of this language's grammar and dictionary.
  bool held_out() const;

 private:
  static InventedLanguage random(Rng& rng);
  bool forms_are_distinct() const;
  std::string noun_phrase(const NounPhrase& phrase, bool is_object) const;
  std::string verb_phrase(int verb, bool past) const;

  std::string name_;
  std::vector<std::string> nouns_, verbs_, adjectives_;  // aligned with the English lexicon
  std::vector<int> dictionary_order_;                      // entries 0..35 in print order
  std::string word_order_;                                 // "SOV", "VSO", ... (S, V, O once each)
  bool adjective_first_ = false;
  std::string plural_suffix_;
  std::string past_marker_;  // a suffix of the verb, or a word before it (past_is_word_)
  bool past_is_word_ = false;
  std::string object_suffix_;  // empty: objects are unmarked
};

// A translation exercise of about `chars` characters: description, examples (at least two),
// then one sentence to translate, in a direction drawn from rng. answer = " " + translation.
struct TranslationText {
  std::string prompt;
  std::string answer;
};
TranslationText make_translation_text(Rng& rng, std::size_t chars, bool held_out);

}  // namespace kiln::data
