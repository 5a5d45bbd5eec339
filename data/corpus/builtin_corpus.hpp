#pragma once
// The built-in corpus: procedurally generated documents that need no download, so that the
// quickstart, the tests and demos have real data on a bare machine. Several kinds of text,
// many of them tasks whose answers can be checked:
//   arithmetic  "What is 47 plus 38? 85"  or "47 + 38 = 85"   (sums, differences, products)
//   sorting     "Sort 9, 2, 7 in increasing order: 2, 7, 9"
//   facts       statements about a fixed fictional world (cities, countries, rivers, years)
//               and questions about them
//   reversal    "Reverse the words: red fox jumps -> jumps fox red"
//   stories     short narratives from a small grammar
//   code        tiny Python functions with their doc comments
// The same (seed, index) always gives the same document on every platform. Held-out tasks
// use operands the training documents never contain, so a model that answers them learned
// the procedure rather than the examples; facts are shared on purpose (recall is the task).
// Long-context tasks and documents (passkey retrieval, in-context language learning) are in
// data/corpus/long_context_corpus.hpp.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::data {

struct CorpusDocument {
  std::uint64_t id = 0;
  std::string kind;
  std::string text;
};

struct CorpusTask {
  std::string kind;
  std::string prompt;  // the model continues it (never ends in a space)...
  std::string answer;  // ...and should produce exactly this, leading space included, then "\n"
  // Long-context tasks (data/corpus/long_context_corpus.hpp): the prompt length asked for,
  // in characters (0 for the short tasks), and for passkeys where the key sits (0 top, 1 end).
  std::uint64_t context_chars = 0;
  std::optional<double> depth;
};

class BuiltinCorpus {
 public:
  // The fictional world (names, facts) is a function of world_seed alone.
  explicit BuiltinCorpus(std::uint64_t world_seed = 2024);

  CorpusDocument document(std::uint64_t index, std::uint64_t seed) const;
  // Tasks whose operands are held out of every document() (arithmetic, sorting, reversal;
  // facts questions test recall of the world the documents describe).
  CorpusTask held_out_task(std::uint64_t index, std::uint64_t seed) const;

  // True when an arithmetic operand pair is reserved for held-out tasks.
  static bool is_held_out_pair(int a, int b);
  // True when a word list is reserved for held-out reversal tasks.
  static bool is_held_out_words(const std::vector<std::string>& words);

  struct City {
    std::string name, country, river, founder;
    int founded = 0;
  };
  const std::vector<City>& cities() const { return cities_; }

 private:
  std::vector<City> cities_;
};

}  // namespace kiln::data
