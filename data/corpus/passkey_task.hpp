#pragma once
// Passkey retrieval (the long-context probe of Mohtashami & Jaggi, "Landmark Attention",
// 2023): a five-digit number stated once at a random depth of a long stretch of filler prose,
// then asked for at the end. A model answers only if its attention reaches back to the key,
// so accuracy against prompt length shows where its usable context ends.
//
//   There is a pass key hidden in the text below. ...          (instruction)
//   <filler paragraphs> The pass key is 48213. Remember it. <filler paragraphs>
//   What is the pass key? The pass key is                      (prompt ends here)
//    48213                                                      (answer)
//
// Keys are split like the other held-out tasks' operands: about one in eight is reserved for
// tasks, so no training document states a key that a task asks for.
#include <cstddef>
#include <string>

#include "trainer/core/random.hpp"

namespace kiln::data {

struct PasskeyText {
  std::string prompt;  // instruction, filler with the key sentence, question (no trailing space)
  std::string answer;  // " " + key
  int key = 0;         // 10000..99999
  double depth = 0.0;  // where the key sentence sits among the filler sentences: 0 first, 1 last
};

// True for the keys reserved to held-out tasks (a fixed hash: stable forever).
bool is_held_out_passkey(int key);

// A prompt of about `chars` characters (at least the instruction, key and question); the key
// is reserved (held_out) or not.
PasskeyText make_passkey_text(Rng& rng, std::size_t chars, bool held_out);

}  // namespace kiln::data
