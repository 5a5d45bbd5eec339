// Regression tests for kiln issue 10: the line and paragraph units of every line-based rule.
// A plain five-paragraph article (paragraphs separated by one blank line) used to be dropped
// by the default recipe as `dup_line_frac`, because blank lines counted as repeated lines.
// Each rule is checked on the shapes real pages have: blank lines, "\r\n", lines of only
// spaces, trailing spaces, a final newline, Unicode line and paragraph separators, both
// through the default pipeline (normaliser on) and on raw text (normaliser off), where the
// rules follow the reference implementation (datatrove) exactly.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/curate/c4_rules.hpp"
#include "data/curate/curate_pipeline.hpp"
#include "data/curate/fineweb_rules.hpp"
#include "data/curate/gopher_quality.hpp"
#include "data/curate/gopher_repetition.hpp"
#include "data/curate/text_units.hpp"
#include "tests/curate/curate_testing.hpp"

namespace kiln::curate {
namespace {

namespace fs = std::filesystem;

// Five paragraphs of two different sentences each, joined by `separator`.
std::string five_paragraphs(std::uint64_t seed, const std::string& separator, const std::string& line_end = "") {
  Rng rng(seed * 104729 + 7);
  std::string text;
  for (int paragraph = 0; paragraph < 5; ++paragraph) {
    if (paragraph > 0) text += separator;
    text += testing::sentence(rng) + " " + testing::sentence(rng) + line_end;
  }
  return text;
}

std::vector<std::string_view> pieces_of(void (*split)(std::string_view, std::vector<std::string_view>&),
                                        std::string_view text) {
  std::vector<std::string_view> pieces;
  split(text, pieces);
  return pieces;
}

using Pieces = std::vector<std::string_view>;

TEST(LineUnits, LineRunsAreReSplitOnNewlineRuns) {
  EXPECT_EQ(pieces_of(split_line_runs, "a\n\n\nb\nc"), (Pieces{"a", "b", "c"}));
  EXPECT_EQ(pieces_of(split_line_runs, "a\n"), (Pieces{"a", ""}));
  EXPECT_EQ(pieces_of(split_line_runs, "\na"), (Pieces{"", "a"}));
  EXPECT_EQ(pieces_of(split_line_runs, "a\r\n\r\nb"), (Pieces{"a\r", "\r", "b"}));
  EXPECT_EQ(pieces_of(split_line_runs, ""), (Pieces{""}));
}

TEST(LineUnits, ParagraphsNeedTwoNewlinesAfterStrip) {
  EXPECT_EQ(pieces_of(split_paragraphs, "\n\n a\nb\n\n\nc \n\n"), (Pieces{"a\nb", "c"}));
  EXPECT_EQ(pieces_of(split_paragraphs, "a\n \nb"), (Pieces{"a\n \nb"}));  // a line of spaces is no break
  // str.strip() removes Unicode whitespace too (U+2029, U+00A0).
  EXPECT_EQ(pieces_of(split_paragraphs, "\u2029\u00a0a\n\nb\u2028"), (Pieces{"a", "b"}));
}

TEST(LineUnits, PythonSplitlines) {
  EXPECT_EQ(pieces_of(split_python_lines, "a\r\nb\rc\nd\u2028e\u2029f\u0085g\n"),
            (Pieces{"a", "b", "c", "d", "e", "f", "g"}));
  EXPECT_EQ(pieces_of(split_python_lines, "a\n\nb\n\n"), (Pieces{"a", "", "b", ""}));
  EXPECT_EQ(pieces_of(split_python_lines, ""), Pieces{});
}

TEST(LineUnits, NonBlankLines) {
  EXPECT_EQ(pieces_of(split_non_blank_lines, "a\n\n \t\nb \n\u3000\n"), (Pieces{"a", "b "}));
}

TEST(LineUnits, StripIsPythonStrip) {
  EXPECT_EQ(strip("\u00a0\u3000 text\u2028\t"), "text");
  EXPECT_EQ(pieces_of(split_whitespace, "one\u00a0two\u2003three"), (Pieces{"one", "two", "three"}));
}

// The case, and the same article in every shape a web page or file gives it, through
// the default recipe: every one is kept (each used to be dropped as dup_line_frac).
TEST(LineUnits, DefaultRecipeKeepsFiveParagraphArticles) {
  const std::vector<std::pair<std::string, std::string>> shapes = {
      {"blank_line", five_paragraphs(1, "\n\n")},
      {"crlf", five_paragraphs(2, "\r\n\r\n")},
      {"spaces_only_line", five_paragraphs(3, "\n   \n")},
      {"tab_only_line", five_paragraphs(4, "\n\t\n")},
      {"trailing_spaces", five_paragraphs(5, "\n\n", "  ")},
      {"final_newline", five_paragraphs(6, "\n\n") + "\n"},
      {"two_blank_lines", five_paragraphs(7, "\n\n\n")},
      {"line_separator", five_paragraphs(8, "\u2028\u2028")},
      {"paragraph_separator", five_paragraphs(9, "\u2029\u2029")},
      {"next_line", five_paragraphs(10, "\u0085\u0085")},
      {"crlf_final_newline", five_paragraphs(11, "\r\n\r\n") + "\r\n"},
  };
  const fs::path dir = fs::temp_directory_path() / ("kiln_line_units_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "articles.jsonl");
    for (const auto& [id, text] : shapes) out << nlohmann::json{{"id", id}, {"text", text}}.dump() << "\n";
  }
  CurateOptions options;
  options.input.paths = {(dir / "articles.jsonl").string()};
  options.output.dir = (dir / "out").string();
  options.output.keep_rejected = true;
  options.run.progress = false;
  const CurateSummary summary = run_curation(options, nullptr);

  std::set<std::string> kept;
  std::ifstream in(dir / "out" / "part-00000.jsonl");
  for (std::string line; std::getline(in, line);) kept.insert(nlohmann::json::parse(line)["id"].get<std::string>());
  std::ifstream rejected(dir / "out" / "rejected" / "part-00000.jsonl");
  for (std::string line; std::getline(rejected, line);) {
    const auto record = nlohmann::json::parse(line);
    ADD_FAILURE() << record["id"] << " dropped by " << record["stage"] << ": " << record["reason"];
  }
  EXPECT_EQ(kept.size(), shapes.size());
  EXPECT_EQ(summary.documents_out, shapes.size());
  fs::remove_all(dir);
}

TEST(LineUnits, RepetitionIgnoresBlankLinesInRawText) {
  const GopherRepetitionOptions options;
  EXPECT_EQ(gopher_repetition_check(five_paragraphs(1, "\n\n"), options), "");
  EXPECT_EQ(gopher_repetition_check(five_paragraphs(1, "\n\n\n\n"), options), "");
  EXPECT_EQ(gopher_repetition_check(five_paragraphs(1, "\n\n") + "\n", options), "");
  // Raw "\r\n" and lines of spaces are text, as in the reference: the "\r" and "   " pieces
  // repeat (the normaliser is what turns them into plain blank lines).
  EXPECT_EQ(gopher_repetition_check(five_paragraphs(1, "\r\n\r\n"), options), "dup_line_frac");
  EXPECT_EQ(gopher_repetition_check(five_paragraphs(1, "\n   \n"), options), "dup_line_frac");
  // Real repetition is still caught.
  const std::string line = testing::sentence_from(3);
  std::string repeated = five_paragraphs(1, "\n\n");
  for (int i = 0; i < 4; ++i) repeated += "\n\n" + line;
  EXPECT_EQ(gopher_repetition_check(repeated, options), "dup_para_frac");
}

GopherRepetitionOptions only_duplicated_5_grams() {
  GopherRepetitionOptions options;
  options.max_dup_line_fraction = options.max_dup_paragraph_fraction = 0;
  options.max_dup_line_char_fraction = options.max_dup_paragraph_char_fraction = 0;
  options.top_ngrams.clear();
  options.dup_ngrams = {{5, 0.15}};
  return options;
}

// The duplicated n-gram scan visits every n-gram: a repeat in the last n - 1 of them counts
// (it used to stop n - 1 n-grams early).
TEST(LineUnits, DuplicatedNgramAtTheEndCounts) {
  const std::string text = "alpha bravo charlie delta echoes foxtrot golfer hotel indigo juliet alpha bravo charlie delta echoes";
  EXPECT_EQ(gopher_repetition_check(text, only_duplicated_5_grams()), "duplicated_5_n_grams");
}

// Duplicated n-gram characters are the reference's "".join(n-gram): without the spaces.
// Here the repeat is 25 letters plus 4 spaces in 169 characters: 0.148 without the spaces,
// 0.172 with them, on either side of 0.15.
TEST(LineUnits, DuplicatedNgramCharsExcludeSpaces) {
  const std::string repeat = "aaaaa bbbbb ccccc ddddd eeeee";
  const std::string middle = "fffff ggggg hhhhh iiiii jjjjj kkkkk lllll mmmmm nnnnn ooooo ppppp qqqqq rrrrr sssss z";
  const std::string tail = "ttttt uuuuu vvvvv wwwww";
  const std::string text = repeat + " " + middle + " " + repeat + " " + tail;
  ASSERT_EQ(code_points(text), 169u);
  EXPECT_EQ(gopher_repetition_check(text, only_duplicated_5_grams()), "");
  EXPECT_EQ(gopher_repetition_check(text + " " + repeat, only_duplicated_5_grams()), "duplicated_5_n_grams");
}

// A 2-gram seen once is the top 2-gram of a two-word text, as in the reference.
TEST(LineUnits, TopNgramSeenOnceCounts) {
  GopherRepetitionOptions options;
  EXPECT_EQ(gopher_repetition_check("alpha beta", options), "top_2_gram");
}

// The stop-word rule counts distinct stop words ("the" three times is one).
TEST(LineUnits, StopWordsAreDistinct) {
  std::string text;
  for (int i = 0; i < 12; ++i) text += "Garden the lantern meadow river harbor window. ";
  EXPECT_EQ(gopher_quality_check(text, {}), "gopher_not_enough_stop_words");
  text += " Bridges of stone.";
  EXPECT_EQ(gopher_quality_check(text, {}), "");
}

// Gopher quality's bullet and ellipsis lines are str.splitlines() lines: U+2028 ends one.
TEST(LineUnits, EllipsisLinesSplitOnUnicodeSeparators) {
  Rng rng(5);
  std::string text;
  for (int i = 0; i < 6; ++i) text += testing::sentence(rng) + " " + testing::sentence(rng) + "\n";
  for (int i = 0; i < 5; ++i) text += testing::sentence(rng) + " wait...\u2028" + testing::sentence(rng) + "\n";
  // 5 of 16 lines end in "..." once U+2028 splits them (none of 11 when it did not).
  EXPECT_EQ(gopher_quality_check(text, {}), "gopher_too_many_end_ellipsis");
}

// C4's lines are str.splitlines() lines: a U+2028-separated line without terminal
// punctuation is removed on its own.
TEST(LineUnits, C4LinesSplitOnUnicodeSeparators) {
  const std::string text = five_paragraphs(12, "\n") + "\u2028" + "Share this page";
  const C4Result result = c4_apply(text, {});
  EXPECT_EQ(result.reason, "");
  EXPECT_EQ(result.lines_removed, 1u);
  EXPECT_EQ(result.text, five_paragraphs(12, "\n"));
}

// An article with short headings between paragraphs: blank lines are no lines for FineWeb,
// so 3 headings of 6 lines are 50% short lines (they were 8 of 11 with the blank lines).
TEST(LineUnits, FineWebIgnoresBlankLines) {
  Rng rng(9);
  std::string text;
  for (const char* heading : {"Introduction", "What we found", "Next steps"}) {
    if (!text.empty()) text += "\n\n";
    text += std::string(heading) + "\n\n" + testing::sentence(rng) + " " + testing::sentence(rng);
  }
  EXPECT_EQ(fineweb_check(text, {}), "");
  std::string spaced = text;
  for (std::size_t at = spaced.find("\n\n"); at != std::string::npos; at = spaced.find("\n\n", at + 4)) spaced.insert(at + 1, "  ");
  EXPECT_EQ(fineweb_check(spaced, {}), "");
}

// FineWeb's punctuation lines end in a sentence terminator (Unicode Sentence_Terminal); a
// closing quote after it does not count, as in the reference.
TEST(LineUnits, FineWebTerminalPunctuation) {
  FineWebOptions options;
  options.max_short_line_ratio = options.max_char_dup_ratio = options.max_newline_ratio = 0;
  EXPECT_EQ(fineweb_check("He said \"stop.\"\nShe said \"go.\"", options), "fineweb_line_punct_ratio");
  EXPECT_EQ(fineweb_check("他说停。\n她说走。", options), "");
  EXPECT_EQ(fineweb_check("क्या यह सच है।\nهل هذا صحيح؟", options), "");
}

}  // namespace
}  // namespace kiln::curate

namespace kiln::curate {
namespace {

// Word tokens split the way the reference tokenizer (spaCy, English) does in the cases web
// text has most, so word counts and n-grams agree: clitics and hyphens between letters.
TEST(WordTokens, CliticsAndHyphensSplitLikeTheReference) {
  std::vector<std::string_view> tokens;
  word_tokens("We don't know; it's a well-known e-mail (often), 2-3 U.S. well- -known", tokens);
  EXPECT_EQ(tokens, (std::vector<std::string_view>{"We", "do", "n't", "know", ";", "it", "'s", "a", "well", "-",
                                                   "known", "e", "-", "mail", "(", "often", ")", ",", "2-3", "U.S",
                                                   ".", "well", "-", "-", "known"}));
  word_tokens("They\u2019re here", tokens);
  EXPECT_EQ(tokens, (std::vector<std::string_view>{"They", "\u2019re", "here"}));
}

// C4 counts sentence breaks, and an abbreviation's full stop ("U.S.", "a.") is none.
TEST(C4Sentences, AbbreviationsAndBreaks) {
  C4Options options;
  options.min_num_sentences = 2;
  EXPECT_EQ(c4_apply("They moved to the U.S. in the spring of that year.", options).reason, "c4_too_few_sentences");
  EXPECT_EQ(c4_apply("Plan a. Then plan b with the rest of the team.", options).reason, "c4_too_few_sentences");
  EXPECT_EQ(c4_apply("They moved in spring. It rained for a week.", options).reason, "");
  EXPECT_EQ(c4_apply("They said \"go.\" Then they went home.", options).reason, "");
}

}  // namespace
}  // namespace kiln::curate
