#include <gtest/gtest.h>

#include "data/curate/decontamination.hpp"
#include "data/curate/json_record.hpp"
#include "data/curate/pii.hpp"
#include "tests/curate/curate_testing.hpp"

namespace kiln::curate {
namespace {

const std::string kQuestion =
    "Which planet in the solar system has the largest number of confirmed moons orbiting it today";

TEST(Decontamination, DropsDocumentsSharingA13Gram) {
  DecontaminationOptions options;
  options.enabled = true;
  const Decontaminator decontaminator(options, {kQuestion});
  EXPECT_EQ(decontaminator.check(testing::prose(1)).reason, "");
  // Case and punctuation differ; the 13 words are the same.
  const std::string leaked = testing::prose(2) + "\nQ: which planet, in the Solar System, has the LARGEST number of confirmed moons?";
  const auto result = decontaminator.check(leaked);
  EXPECT_EQ(result.reason, "contaminated");
  EXPECT_GE(result.matches, 1u);
  // Twelve of the thirteen words are not enough.
  EXPECT_EQ(decontaminator.check("which planet in the solar system has the largest number of confirmed").reason, "");
}

TEST(Decontamination, SpanModeCutsTheMatchWithItsMargin) {
  DecontaminationOptions options;
  options.enabled = true;
  options.mode = DecontaminationMode::Span;
  options.margin_chars = 13;
  options.min_remaining_chars = 50;
  const Decontaminator decontaminator(options, {kQuestion});
  const std::string before = testing::prose(3, 2);
  const std::string after = testing::prose(4, 2);
  // The margins reach exactly to the line breaks around the match.
  const auto result = decontaminator.check(before + "\nFiller words " + kQuestion + " more filler\n" + after);
  EXPECT_EQ(result.reason, "");
  EXPECT_EQ(result.spans_removed, 1u);
  EXPECT_EQ(result.text, before + "\n" + after);
  EXPECT_EQ(decontaminator.check("Short intro. " + kQuestion).reason, "contaminated_remainder_too_short");
}

TEST(Decontamination, ShortEvalTextsMatchWholeAndNumbersCount) {
  DecontaminationOptions options;
  options.enabled = true;
  options.min_eval_words = 5;
  const Decontaminator decontaminator(options, {"What is 78 plus 79? 157", "Yes"});
  EXPECT_EQ(decontaminator.check("12 + 4 = 16\nWhat is 78 plus 79? 157\n").reason, "contaminated");
  EXPECT_EQ(decontaminator.check("What is 78 plus 97? 175").reason, "");  // other numbers
  EXPECT_EQ(decontaminator.check("Yes, it is.").reason, "");  // below min_eval_words: ignored
  EXPECT_EQ(decontaminator.eval_texts(), 1u);
}

TEST(Pii, RedactsEmailsAndIpAddresses) {
  const PiiRedactor redactor({});
  const auto result = redactor.redact(
      "Write to jane.doe+news@example.co.uk or admin@mail.server.org. Server 192.168.0.17 and 2001:db8::8a2e:370:7334 "
      "and fe80:0:0:0:202:b3ff:fe1e:8329 are up.");
  EXPECT_EQ(result.text, "Write to <EMAIL> or <EMAIL>. Server <IP_ADDRESS> and <IP_ADDRESS> and <IP_ADDRESS> are up.");
  EXPECT_EQ(result.emails, 2u);
  EXPECT_EQ(result.ip_addresses, 3u);
}

TEST(Pii, LeavesLookalikesAlone) {
  const PiiRedactor redactor({});
  const std::string text = "Version 1.2.3.4.5 of the tool, 999.1.1.1 is not an address, a@b is not mail, 10:30 is a time.";
  const auto result = redactor.redact(text);
  EXPECT_EQ(result.text, text);
  EXPECT_FALSE(result.changed());
  EXPECT_EQ(redactor.redact("").text, "");
}

TEST(JsonRecord, ReplacesTextKeepingEveryOtherField) {
  const std::string record = R"({"id": 17, "meta": {"text": "inner", "n": [1, 2]}, "text": "old \"quoted\" text", "score": 1.50})";
  ParsedRecord parsed;
  ASSERT_EQ(parse_record(record, "text", parsed), "");
  EXPECT_EQ(parsed.text, "old \"quoted\" text");
  EXPECT_EQ(splice(record, parsed.value_begin, parsed.value_end, json_string("new\ntext")),
            R"({"id": 17, "meta": {"text": "inner", "n": [1, 2]}, "text": "new\ntext", "score": 1.50})");
  EXPECT_EQ(set_json_field(record, "score", "2"),
            R"({"id": 17, "meta": {"text": "inner", "n": [1, 2]}, "text": "old \"quoted\" text", "score": 2})");
  EXPECT_EQ(set_json_field(R"({"a":1})", "reason", json_string("x")), R"({"a":1,"reason":"x"})");
  EXPECT_EQ(set_json_field("{}", "reason", "1"), R"({"reason":1})");
}

TEST(JsonRecord, ReportsBadRecords) {
  ParsedRecord parsed;
  EXPECT_NE(parse_record(R"({"text": "unterminated)", "text", parsed).find("malformed JSON"), std::string::npos);
  EXPECT_EQ(parse_record(R"([1, 2])", "text", parsed), "expected a JSON object per line");
  EXPECT_NE(parse_record(R"({"body": "x"})", "text", parsed).find("no \"text\" field"), std::string::npos);
  EXPECT_EQ(parse_record(R"({"text": 5})", "text", parsed), "field \"text\" is not a string");
  // Two "text" keys: readers disagree on which wins, so the record is refused, naming the key.
  EXPECT_EQ(parse_record(R"({"text": "first", "id": 1, "text": "second"})", "text", parsed),
            "the \"text\" key appears more than once in the record; write it once");
  EXPECT_EQ(parse_record(R"({"body": "a", "body": "b", "text": "kept"})", "text", parsed), "");
  EXPECT_EQ(parsed.text, "kept");
  EXPECT_EQ(json_string("tab\tctl\x01 \xc3\xa9"), "\"tab\\tctl\\u0001 \xc3\xa9\"");
}

}  // namespace
}  // namespace kiln::curate
