#include "data/corpus/builtin_corpus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "trainer/core/random.hpp"

namespace kiln::data {

namespace {

using Words = std::vector<std::string>;

// Vocabulary for the generated prose. Small on purpose: a tiny model can learn it.
const Words kPeople = {"Ada", "Bram", "Cleo", "Dara", "Emil", "Fen", "Greta", "Hugo", "Ines", "Jonas",
                       "Kira", "Leon", "Mara", "Nils", "Oona", "Pavel", "Rosa", "Sami", "Tove", "Ugo"};
const Words kAnimals = {"fox", "owl", "otter", "heron", "badger", "lynx", "crow", "hare", "wolf", "seal"};
const Words kColours = {"red", "blue", "green", "yellow", "black", "white", "grey", "purple", "orange", "brown"};
const Words kObjects = {"lantern", "map", "key", "basket", "compass", "letter", "coin", "rope", "book", "kettle"};
const Words kPlaces = {"the market", "the old bridge", "the harbour", "the forest", "the library",
                       "the mill", "the hill", "the garden", "the station", "the river bank"};
const Words kVerbs = {"found", "carried", "lost", "painted", "opened", "hid", "mended", "sold", "bought", "dropped"};
const Words kWeather = {"rain", "snow", "fog", "wind", "sunshine", "thunder"};
const Words kFunctionNames = {"total", "largest", "smallest", "count_even", "reverse", "average", "first", "last"};
const std::array<const char*, 12> kSyllables = {"ta", "ver", "lo", "mi", "sen", "dor", "ka", "ri", "bel", "os", "nu", "an"};

std::string capitalised(std::string word) {
  if (!word.empty() && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 'a' + 'A');
  return word;
}

std::string invented_name(Rng& rng, int syllables) {
  std::string name;
  for (int i = 0; i < syllables; ++i) name += kSyllables[rng.below(kSyllables.size())];
  return capitalised(name);
}

std::string join(const std::vector<int>& numbers, const char* separator) {
  std::string text;
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    if (i) text += separator;
    text += std::to_string(numbers[i]);
  }
  return text;
}

std::string join(const Words& words, const char* separator) {
  std::string text;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i) text += separator;
    text += words[i];
  }
  return text;
}

// ---- arithmetic ------------------------------------------------------------------------------

struct Arithmetic {
  int a, b;
  char op;
  int result() const { return op == '+' ? a + b : op == '-' ? a - b : a * b; }
  const char* word() const { return op == '+' ? "plus" : op == '-' ? "minus" : "times"; }
};

Arithmetic draw_arithmetic(Rng& rng, bool held_out) {
  while (true) {
    Arithmetic problem{};
    problem.op = "+-*"[rng.below(3)];
    const int high = problem.op == '*' ? 30 : 99;
    problem.a = rng.between(0, high);
    problem.b = rng.between(0, high);
    if (problem.op == '-' && problem.b > problem.a) std::swap(problem.a, problem.b);
    if (BuiltinCorpus::is_held_out_pair(problem.a, problem.b) == held_out) return problem;
  }
}

std::string arithmetic_prompt(const Arithmetic& problem) {
  return fmt::format("What is {} {} {}?", problem.a, problem.word(), problem.b);
}

std::string arithmetic_document(Rng& rng) {
  std::string text;
  const int lines = rng.between(4, 10);
  for (int i = 0; i < lines; ++i) {
    const Arithmetic problem = draw_arithmetic(rng, false);
    if (rng.below(2) == 0) {
      text += arithmetic_prompt(problem) + " " + std::to_string(problem.result()) + "\n";
    } else {
      text += fmt::format("{} {} {} = {}\n", problem.a, problem.op, problem.b, problem.result());
    }
  }
  return text;
}

// ---- sorting and reversal -----------------------------------------------------------------

std::vector<int> draw_numbers(Rng& rng) {
  std::vector<int> numbers(static_cast<std::size_t>(rng.between(3, 7)));
  for (int& number : numbers) number = rng.between(0, 99);
  return numbers;
}

// Lists whose first two numbers form a held-out pair appear only in held-out tasks.
std::vector<int> draw_sort_list(Rng& rng, bool held_out) {
  while (true) {
    auto numbers = draw_numbers(rng);
    if (BuiltinCorpus::is_held_out_pair(numbers[0], numbers[1]) == held_out) return numbers;
  }
}

std::string sort_prompt(const std::vector<int>& numbers) {
  return fmt::format("Sort {} in increasing order:", join(numbers, ", "));
}

std::string sorted_text(std::vector<int> numbers) {
  std::sort(numbers.begin(), numbers.end());
  return join(numbers, ", ");
}

std::string sorting_document(Rng& rng) {
  std::string text;
  const int lines = rng.between(3, 6);
  for (int i = 0; i < lines; ++i) {
    const auto numbers = draw_sort_list(rng, false);
    text += sort_prompt(numbers) + " " + sorted_text(numbers) + "\n";
  }
  return text;
}

Words draw_reversal_words(Rng& rng, bool held_out) {
  while (true) {
    Words words;
    const int count = rng.between(3, 5);
    for (int w = 0; w < count; ++w) words.push_back(rng.below(2) ? rng.pick(kColours) : rng.pick(kAnimals));
    if (BuiltinCorpus::is_held_out_words(words) == held_out) return words;
  }
}

std::string reversal_prompt(const Words& words) { return fmt::format("Reverse the words: {} ->", join(words, " ")); }

std::string reversed_text(const Words& words) { return join(Words(words.rbegin(), words.rend()), " "); }

std::string reversal_document(Rng& rng) {
  std::string text;
  const int lines = rng.between(3, 6);
  for (int i = 0; i < lines; ++i) {
    const Words words = draw_reversal_words(rng, false);
    text += fmt::format("{} {}\n", reversal_prompt(words), reversed_text(words));
  }
  return text;
}

// ---- facts about the fictional world ---------------------------------------------------------

std::string fact_sentence(const BuiltinCorpus::City& city, int which) {
  switch (which) {
    case 0: return fmt::format("{} is a city in {}.", city.name, city.country);
    case 1: return fmt::format("The river {} flows through {}.", city.river, city.name);
    case 2: return fmt::format("{} was founded in {} by {}.", city.name, city.founded, city.founder);
    default: return fmt::format("Travellers reach {} in {} by following the {}.", city.name, city.country, city.river);
  }
}

CorpusTask short_task(std::string kind, std::string prompt, std::string answer) {
  CorpusTask task;
  task.kind = std::move(kind);
  task.prompt = std::move(prompt);
  task.answer = std::move(answer);
  return task;
}

CorpusTask fact_question(const BuiltinCorpus::City& city, int which) {
  switch (which) {
    case 0: return short_task("facts", fmt::format("Q: In which country is {}? A:", city.name), fmt::format(" {}", city.country));
    case 1: return short_task("facts", fmt::format("Q: Which river flows through {}? A:", city.name), fmt::format(" {}", city.river));
    default: return short_task("facts", fmt::format("Q: In which year was {} founded? A:", city.name), fmt::format(" {}", city.founded));
  }
}

std::string facts_document(const BuiltinCorpus& corpus, Rng& rng) {
  std::string text;
  const int sentences = rng.between(3, 6);
  for (int i = 0; i < sentences; ++i) {
    const auto& city = rng.pick(corpus.cities());
    if (rng.below(3) == 0) {
      const auto question = fact_question(city, rng.between(0, 2));
      text += question.prompt + question.answer + "\n";
    } else {
      text += fact_sentence(city, rng.between(0, 3)) + (i + 1 < sentences ? " " : "\n");
    }
  }
  return text;
}

// ---- stories and code ----------------------------------------------------------------------

std::string story_document(Rng& rng) {
  const auto& hero = rng.pick(kPeople);
  const auto& friend_name = rng.pick(kPeople);
  const auto& object = rng.pick(kObjects);
  const auto& colour = rng.pick(kColours);
  std::string text = fmt::format("One morning {} walked to {} in the {}. ", hero, rng.pick(kPlaces), rng.pick(kWeather));
  text += fmt::format("There {} {} a {} {}. ", rng.below(2) ? "she" : "he", rng.pick(kVerbs), colour, object);
  const int middle = rng.between(1, 4);
  for (int i = 0; i < middle; ++i) {
    text += fmt::format("A {} watched from {} while {} {} the {}. ", rng.pick(kAnimals), rng.pick(kPlaces),
                        rng.below(2) ? hero : friend_name, rng.pick(kVerbs), object);
  }
  text += fmt::format("In the evening {} told {} about the {} {}, and they laughed.\n", hero, friend_name, colour, object);
  return text;
}

std::string code_document(Rng& rng) {
  const auto& name = rng.pick(kFunctionNames);
  const auto numbers = draw_numbers(rng);
  std::string text = fmt::format("def {}(values):\n    \"\"\"Return the {} of a list of numbers.\"\"\"\n", name, name);
  if (name == "total" || name == "average") {
    text += "    result = 0\n    for value in values:\n        result += value\n";
    text += name == "average" ? "    return result / len(values)\n" : "    return result\n";
  } else if (name == "largest" || name == "smallest") {
    text += fmt::format("    return {}(values)\n", name == "largest" ? "max" : "min");
  } else if (name == "count_even") {
    text += "    return sum(1 for value in values if value % 2 == 0)\n";
  } else if (name == "reverse") {
    text += "    return values[::-1]\n";
  } else {
    text += fmt::format("    return values[{}]\n", name == "first" ? "0" : "-1");
  }
  text += fmt::format("\nprint({}([{}]))\n", name, join(numbers, ", "));
  return text;
}

}  // namespace

bool BuiltinCorpus::is_held_out_words(const std::vector<std::string>& words) {
  // One word list in eight, by a fixed hash of its text.
  std::uint64_t hash = 0x7265766eULL;
  for (const auto& word : words) {
    for (const char c : word) hash = mix_seed(hash, static_cast<unsigned char>(c));
    hash = mix_seed(hash, ' ');
  }
  return hash % 8 == 0;
}

bool BuiltinCorpus::is_held_out_pair(int a, int b) {
  // About one pair in eight is reserved; a fixed hash keeps the choice stable forever.
  return mix_seed(0x6b696c6eULL, static_cast<std::uint64_t>(a), static_cast<std::uint64_t>(b)) % 8 == 0;
}

BuiltinCorpus::BuiltinCorpus(std::uint64_t world_seed) {
  Rng rng(mix_seed(world_seed, 0x776f726c64ULL));
  std::vector<std::string> countries;
  for (int i = 0; i < 8; ++i) countries.push_back(invented_name(rng, 2) + "ia");
  std::set<std::string> taken;
  while (cities_.size() < 48) {
    City city;
    city.name = invented_name(rng, rng.between(2, 3));
    if (!taken.insert(city.name).second) continue;
    city.country = rng.pick(countries);
    city.river = invented_name(rng, 2);
    city.founder = rng.pick(kPeople);
    city.founded = rng.between(1000, 1899);
    cities_.push_back(std::move(city));
  }
}

CorpusDocument BuiltinCorpus::document(std::uint64_t index, std::uint64_t seed) const {
  Rng rng(mix_seed(seed, 0x646f63ULL, index));
  static const std::array<const char*, 6> kKinds = {"arithmetic", "sorting", "facts", "reversal", "story", "code"};
  // Weighted towards the checkable tasks; prose and code keep the text varied.
  static const std::array<int, 6> kWeights = {30, 15, 20, 10, 15, 10};
  int draw = static_cast<int>(rng.below(100));
  std::size_t kind = 0;
  while (draw >= kWeights[kind]) draw -= kWeights[kind++];
  CorpusDocument document{index, kKinds[kind], {}};
  switch (kind) {
    case 0: document.text = arithmetic_document(rng); break;
    case 1: document.text = sorting_document(rng); break;
    case 2: document.text = facts_document(*this, rng); break;
    case 3: document.text = reversal_document(rng); break;
    case 4: document.text = story_document(rng); break;
    default: document.text = code_document(rng); break;
  }
  return document;
}

CorpusTask BuiltinCorpus::held_out_task(std::uint64_t index, std::uint64_t seed) const {
  Rng rng(mix_seed(seed, 0x7461736bULL, index));
  switch (rng.below(4)) {
    case 0: {
      const Arithmetic problem = draw_arithmetic(rng, true);
      return short_task("arithmetic", arithmetic_prompt(problem), fmt::format(" {}", problem.result()));
    }
    case 1: {
      const auto numbers = draw_sort_list(rng, true);
      return short_task("sorting", sort_prompt(numbers), fmt::format(" {}", sorted_text(numbers)));
    }
    case 2: {
      const Words words = draw_reversal_words(rng, true);
      return short_task("reversal", reversal_prompt(words), fmt::format(" {}", reversed_text(words)));
    }
    default:
      return fact_question(rng.pick(cities_), rng.between(0, 2));
  }
}

}  // namespace kiln::data
