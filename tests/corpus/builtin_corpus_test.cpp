#include "data/corpus/builtin_corpus.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

namespace {

using kiln::data::BuiltinCorpus;

TEST(BuiltinCorpus, DeterministicPerSeedAndIndex) {
  const BuiltinCorpus a, b;
  for (std::uint64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(a.document(i, 7).text, b.document(i, 7).text);
  }
  int differing = 0;
  for (std::uint64_t i = 0; i < 50; ++i) differing += a.document(i, 7).text != a.document(i, 8).text;
  EXPECT_GT(differing, 40);
}

TEST(BuiltinCorpus, EveryArithmeticAndSortingLineIsCorrect) {
  const BuiltinCorpus corpus;
  const std::regex question(R"(What is (\d+) (plus|minus|times) (\d+)\? (-?\d+))");
  const std::regex equation(R"((\d+) ([-+*]) (\d+) = (-?\d+))");
  int checked = 0;
  std::map<std::string, int> kinds;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const auto document = corpus.document(i, 1);
    ++kinds[document.kind];
    ASSERT_FALSE(document.text.empty());
    for (auto it = std::sregex_iterator(document.text.begin(), document.text.end(), question);
         it != std::sregex_iterator(); ++it) {
      const long a = std::stol((*it)[1]), b = std::stol((*it)[3]), result = std::stol((*it)[4]);
      const std::string op = (*it)[2];
      EXPECT_EQ(result, op == "plus" ? a + b : op == "minus" ? a - b : a * b) << it->str();
      EXPECT_FALSE(BuiltinCorpus::is_held_out_pair(static_cast<int>(a), static_cast<int>(b))) << it->str();
      ++checked;
    }
    for (auto it = std::sregex_iterator(document.text.begin(), document.text.end(), equation);
         it != std::sregex_iterator(); ++it) {
      const long a = std::stol((*it)[1]), b = std::stol((*it)[3]), result = std::stol((*it)[4]);
      const char op = (*it)[2].str()[0];
      EXPECT_EQ(result, op == '+' ? a + b : op == '-' ? a - b : a * b) << it->str();
      ++checked;
    }
  }
  EXPECT_GT(checked, 2000);
  EXPECT_EQ(kinds.size(), 6u);  // every kind of document appears
}

TEST(BuiltinCorpus, HeldOutTasksNeverAppearInTrainingDocuments) {
  const BuiltinCorpus corpus;
  std::set<std::string> training_lines;
  for (std::uint64_t i = 0; i < 20000; ++i) {
    const auto text = corpus.document(i, 1).text;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
      training_lines.insert(text.substr(start, end - start));
    }
  }
  std::map<std::string, int> kinds;
  for (std::uint64_t i = 0; i < 300; ++i) {
    const auto task = corpus.held_out_task(i, 1);
    ASSERT_FALSE(task.answer.empty());
    EXPECT_EQ(task.answer[0], ' ');
    EXPECT_NE(task.prompt.back(), ' ');
    if (task.kind == "facts") continue;  // facts are meant to be recalled from training
    EXPECT_EQ(training_lines.count(task.prompt + task.answer), 0u) << task.prompt;
    ++kinds[task.kind];
  }
  for (const char* kind : {"arithmetic", "sorting", "reversal"}) EXPECT_GT(kinds[kind], 50) << kind;
}

TEST(BuiltinCorpus, WorldFactsAreConsistent) {
  const BuiltinCorpus corpus;
  std::set<std::string> names;
  for (const auto& city : corpus.cities()) {
    EXPECT_TRUE(names.insert(city.name).second) << "duplicate city " << city.name;
    EXPECT_GE(city.founded, 1000);
    EXPECT_LE(city.founded, 1899);
  }
  EXPECT_EQ(BuiltinCorpus(99).cities().size(), corpus.cities().size());
  EXPECT_NE(BuiltinCorpus(99).cities()[0].name + BuiltinCorpus(99).cities()[1].name,
            corpus.cities()[0].name + corpus.cities()[1].name);
}

}  // namespace
