#pragma once
// Filler prose for long-context documents and tasks (the haystack of a passkey task): plain
// narrative sentences about a small town, from sixteen templates filled from word lists, so
// that sentences seldom repeat and the text cannot be skimmed as one line said over and
// over. The sentences hold no digits, so the key is the only number in a passkey prompt (as
// in the original test): the task measures whether the model can reach it, not whether it
// can tell it from decoys.
#include <cstddef>
#include <string>
#include <vector>

#include "trainer/core/random.hpp"

namespace kiln::data {

// One sentence, capitalised and ending in a full stop; no digits, no newline.
std::string filler_sentence(Rng& rng);

// Sentences until their joined length (one space between them) reaches at least `chars`.
std::vector<std::string> filler_sentences(Rng& rng, std::size_t chars);

// Sentences joined into paragraphs of three to six sentences ("\n\n" between paragraphs).
std::string paragraphs_of(const std::vector<std::string>& sentences, Rng& rng);

}  // namespace kiln::data
