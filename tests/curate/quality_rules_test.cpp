// The heuristic rules on documents built to pass them and on documents built to trip
// exactly one, plus the edge cases: empty text, one word, only punctuation, very long lines,
// non-Latin scripts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/curate/c4_rules.hpp"
#include "data/curate/fineweb_rules.hpp"
#include "data/curate/gopher_quality.hpp"
#include "data/curate/gopher_repetition.hpp"
#include "trainer/core/error.hpp"
#include "tests/curate/curate_testing.hpp"

namespace kiln::curate {
namespace {

using testing::prose;

TEST(GopherQuality, GeneratedProsePasses) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) EXPECT_EQ(gopher_quality_check(prose(seed), {}), "") << prose(seed);
}

TEST(GopherQuality, EdgeCases) {
  const GopherQualityOptions options;
  EXPECT_EQ(gopher_quality_check("", options), "gopher_short_doc");
  EXPECT_EQ(gopher_quality_check("word", options), "gopher_short_doc");
  EXPECT_EQ(gopher_quality_check("!!! ... ??? --- ;;; ,,,", options), "gopher_short_doc");
  // Chinese has no spaces: a long paragraph is a handful of "words" for these rules.
  EXPECT_EQ(gopher_quality_check("我们今天去公园散步，天气很好。孩子们在草地上玩耍，老人们在树下聊天。", options), "gopher_short_doc");
  GopherQualityOptions no_length = options;
  no_length.min_doc_words = 0;
  EXPECT_EQ(gopher_quality_check("...", no_length), "gopher_no_words");
}

TEST(GopherQuality, EachRuleTrips) {
  const GopherQualityOptions options;
  const std::string good = prose(1);
  EXPECT_EQ(gopher_quality_check(good + "\n" + std::string(4000, 'a') + " b", options), "gopher_above_avg_word_length");
  std::string short_words;
  for (int i = 0; i < 80; ++i) short_words += "a of to be ";
  EXPECT_EQ(gopher_quality_check(short_words, options), "gopher_below_avg_word_length");
  EXPECT_EQ(gopher_quality_check(good + " " + std::string(40, '#'), options), "gopher_too_many_hashes");
  std::string ellipses = good;
  for (int i = 0; i < 40; ++i) ellipses += " wait...";
  EXPECT_EQ(gopher_quality_check(ellipses, options), "gopher_too_many_ellipsis");
  std::string bullets;
  for (int i = 0; i < 12; ++i) bullets += "\u2022 " + testing::sentence_from(static_cast<std::uint64_t>(i)) + "\n";
  EXPECT_EQ(gopher_quality_check(bullets, options), "gopher_too_many_bullets");
  std::string numbers = good;
  for (int i = 0; i < 400; ++i) numbers += " 12345";
  EXPECT_EQ(gopher_quality_check(numbers, options), "gopher_below_alpha_threshold");
  std::string no_stop;
  for (int i = 0; i < 20; ++i) no_stop += "garden lantern meadow river harbor window. ";
  EXPECT_EQ(gopher_quality_check(no_stop, options), "gopher_not_enough_stop_words");
}

TEST(GopherQuality, CyrillicProseCountsItsWords) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += "Москва большой город на реке и люди любят гулять по улицам. ";
  GopherQualityOptions options;
  options.min_stop_words = 0;
  EXPECT_EQ(gopher_quality_check(text, options), "");  // letters in any script count as alphabetic
}

TEST(GopherRepetition, GeneratedProsePasses) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) EXPECT_EQ(gopher_repetition_check(prose(seed), {}), "");
}

TEST(GopherRepetition, EdgeCasesPass) {
  const GopherRepetitionOptions options;
  EXPECT_EQ(gopher_repetition_check("", options), "");
  EXPECT_EQ(gopher_repetition_check("word", options), "");
  // The only 2-gram of "?!" is all of it: dropped, as by the reference.
  EXPECT_EQ(gopher_repetition_check("?!", options), "top_2_gram");
  EXPECT_EQ(gopher_repetition_check(std::string(100000, 'x'), options), "");  // one very long line
}

TEST(GopherRepetition, EachRuleTrips) {
  const GopherRepetitionOptions options;
  const std::string line = "The same line with the river of the garden.";
  EXPECT_EQ(gopher_repetition_check(prose(1) + "\n\n" + line + "\n\n" + line + "\n\n" + line, options), "dup_para_frac");
  EXPECT_EQ(gopher_repetition_check(prose(2, 2) + "\n" + line + "\n" + line + "\n" + line, options), "dup_line_frac");
  std::string pairs = prose(3);
  for (int i = 0; i < 60; ++i) pairs += " garden river";
  EXPECT_EQ(gopher_repetition_check(pairs, options), "top_2_gram");
  // A repeated 5-word phrase inside otherwise fresh words, never the top 2-4-gram alone.
  std::string repeated = prose(4, 4);
  for (int i = 0; i < 6; ++i) repeated.append(" ").append(testing::sentence_from(99));
  GopherRepetitionOptions only_dup = options;
  only_dup.top_ngrams.clear();
  only_dup.max_dup_line_char_fraction = only_dup.max_dup_line_fraction = 0;
  only_dup.max_dup_paragraph_char_fraction = only_dup.max_dup_paragraph_fraction = 0;
  EXPECT_EQ(gopher_repetition_check(repeated, only_dup), "duplicated_5_n_grams");
}

TEST(C4Rules, KeepsProseAndRemovesBadLines) {
  const C4Options options;
  const std::string good = prose(5);
  const C4Result kept = c4_apply(good, options);
  EXPECT_EQ(kept.reason, "");
  EXPECT_EQ(kept.text, good);
  const C4Result cleaned = c4_apply(good + "\nClick here\nPlease enable javascript to see the page.\n"
                                           "We use cookies and a privacy policy here.\nA citation here[12] stays fine.",
                                    options);
  EXPECT_EQ(cleaned.reason, "");
  EXPECT_EQ(cleaned.lines_removed, 3u);
  EXPECT_EQ(cleaned.text, good + "\nA citation here stays fine.");
}

TEST(C4Rules, PageRules) {
  const C4Options options;
  EXPECT_EQ(c4_apply("", options).reason, "c4_too_few_sentences");
  EXPECT_EQ(c4_apply("word", options).reason, "c4_too_few_sentences");
  EXPECT_EQ(c4_apply(prose(6) + "\nLorem ipsum dolor sit amet.", options).reason, "c4_lorem_ipsum");
  EXPECT_EQ(c4_apply(prose(6) + "\nThe function body is { return x; }.", options).reason, "c4_curly_bracket");
  const C4Result long_word = c4_apply(prose(6) + "\nThe " + std::string(2000, 'z') + " word is long.", options);
  EXPECT_EQ(long_word.reason, "");
  EXPECT_EQ(long_word.lines_removed, 1u);
}

TEST(FineWebRules, ProsePassesAndEachRuleTrips) {
  const FineWebOptions options;
  EXPECT_EQ(fineweb_check(prose(7), options), "");
  EXPECT_EQ(fineweb_check("no punctuation here at all\nnor here either friend\n" + std::string(60, 'x'), options),
            "fineweb_line_punct_ratio");
  EXPECT_EQ(fineweb_check("Short one.\nShort two.\nShort three.\n" + prose(8, 1), options), "fineweb_short_line_ratio");
  const std::string line = testing::sentence_from(3);
  EXPECT_EQ(fineweb_check(prose(9) + "\n" + line + "\n" + line, options), "fineweb_char_dup_ratio");
  std::string list;
  for (int i = 0; i < 10; ++i) list += "An item of the list that is long enough.\n";
  FineWebOptions no_dup = options;
  no_dup.max_char_dup_ratio = 0;
  no_dup.max_short_line_ratio = 0;
  std::string items;
  for (int i = 0; i < 20; ++i) items += "Item " + std::to_string(i) + ".\n";
  EXPECT_EQ(fineweb_check(items, no_dup), "fineweb_list_ratio");
  EXPECT_EQ(fineweb_check("", options), "fineweb_empty");
  EXPECT_EQ(fineweb_check("\n \n\t\n", options), "fineweb_empty");
}

}  // namespace
TEST(C4Rules, BadWordsDropPagesWithAListedWordOrPhraseOnly) {
  kiln::curate::C4Options options;
  options.min_num_sentences = 0;
  options.bad_words = {"Grimble", "rotten fish"};
  const auto path = std::filesystem::temp_directory_path() / "kiln_c4_bad_words.txt";
  std::ofstream(path) << "# one entry per line\nzorp\n";
  options.bad_words_file = path.string();
  const kiln::curate::BadWords bad_words(options);
  const auto verdict = [&](const char* text) { return std::string(kiln::curate::c4_apply(text, options, &bad_words).reason); };
  EXPECT_EQ(verdict("The market sold a GRIMBLE today, the seller said."), "c4_bad_words");
  EXPECT_EQ(verdict("Nobody wanted the rotten   fish at all, it seemed."), "c4_bad_words");
  EXPECT_EQ(verdict("A zorp appeared in the garden this morning, they said."), "c4_bad_words");
  EXPECT_EQ(verdict("Grimbles and rotten fishes are different words entirely."), "");  // whole words only
  EXPECT_EQ(verdict("The fish was rotten when it arrived at the harbour."), "");     // not the phrase
  EXPECT_EQ(std::string(kiln::curate::c4_apply("A grimble here, said nobody.", options).reason), "");  // no list given
  std::filesystem::remove(path);
  options.bad_words_file = path.string();
  EXPECT_THROW(kiln::curate::BadWords{options}, kiln::Error);
}

}  // namespace kiln::curate
