#include "data/io/document_reader.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "data/io/line_writer.hpp"
#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::data::BadRecordPolicy;
using kiln::data::Document;
using kiln::data::DocumentReader;
using kiln::data::ReaderOptions;

class DocumentReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_reader_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& bytes) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  static std::vector<Document> read_all(DocumentReader& reader) {
    std::vector<Document> documents;
    Document document;
    while (reader.next(document)) documents.push_back(document);
    return documents;
  }

  static std::string error_of(const std::function<void()>& action) {
    try {
      action();
    } catch (const kiln::Error& error) {
      return error.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(DocumentReaderTest, ReadsJsonlTextAndZstInOrderWithFieldChoice) {
  const auto jsonl = write("a.jsonl", "{\"text\": \"first\", \"id\": 1}\n\n{\"text\": \"sec\\nond\"}\n");
  const auto text = write("b.txt", "a whole file\nis one document\n");
  {
    kiln::data::LineWriter writer(dir_ / "c.jsonl.zst");
    for (int i = 0; i < 3000; ++i) writer.write_line("{\"text\": \"zst line " + std::to_string(i) + "\"}");
    writer.close();
  }
  DocumentReader reader({jsonl, text, dir_ / "c.jsonl.zst"}, ReaderOptions{});
  const auto documents = read_all(reader);
  ASSERT_EQ(documents.size(), 2u + 1u + 3000u);
  EXPECT_EQ(documents[0].text, "first");
  EXPECT_EQ(documents[1].text, "sec\nond");
  EXPECT_EQ(documents[1].line, 3u);  // the blank line still counts
  EXPECT_EQ(documents[2].text, "a whole file\nis one document\n");
  EXPECT_EQ(documents[3].text, "zst line 0");
  EXPECT_EQ(documents.back().text, "zst line 2999");
  EXPECT_EQ(documents.back().line, 3000u);
  EXPECT_EQ(reader.report().documents, documents.size());

  const auto other = write("d.jsonl", "{\"body\": \"x\"}\n");
  DocumentReader by_field({other}, ReaderOptions{"body"});
  EXPECT_EQ(read_all(by_field).at(0).text, "x");
}

TEST_F(DocumentReaderTest, MalformedLinesFailWithFileAndLineOrAreSkippedAndCounted) {
  const auto path = write("bad.jsonl",
                          "{\"text\": \"good\"}\n{\"text\": \"broken\"\n[1, 2]\n{\"other\": 1}\n{\"text\": 5}\n"
                          "{\"text\": \"\\u00e9 fine\"}\n{\"text\": \"ok\", \"x\": ]}\n");
  DocumentReader strict({path}, ReaderOptions{});
  const auto message = error_of([&] { read_all(strict); });
  EXPECT_NE(message.find(path.string() + ":2"), std::string::npos) << message;
  EXPECT_NE(message.find("malformed JSON"), std::string::npos) << message;

  ReaderOptions lenient;
  lenient.on_bad_record = BadRecordPolicy::Skip;
  lenient.max_reported_problems = 0;
  DocumentReader skipping({path}, lenient);
  const auto documents = read_all(skipping);
  ASSERT_EQ(documents.size(), 2u);
  EXPECT_EQ(documents[0].text, "good");
  EXPECT_EQ(documents[1].text, "\xc3\xa9 fine");
  EXPECT_EQ(skipping.report().skipped, 5u);  // broken, array, no field, number, trailing garbage
}

TEST_F(DocumentReaderTest, InvalidUtf8IsReportedWithLine) {
  const auto text = write("latin1.txt", "line one\nline two caf\xe9\n");
  DocumentReader reader({text}, ReaderOptions{});
  const auto message = error_of([&] { read_all(reader); });
  EXPECT_NE(message.find(text.string() + ":2"), std::string::npos) << message;
  EXPECT_NE(message.find("invalid UTF-8"), std::string::npos) << message;

  const auto jsonl = write("latin1.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n");
  DocumentReader json_reader({jsonl}, ReaderOptions{});
  const auto json_message = error_of([&] { read_all(json_reader); });
  EXPECT_NE(json_message.find(jsonl.string() + ":2"), std::string::npos) << json_message;
}

TEST_F(DocumentReaderTest, MissingDirectoryAndTruncatedInputsAreClearErrors) {
  EXPECT_NE(error_of([&] { DocumentReader({dir_ / "nope.jsonl"}, ReaderOptions{}); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { DocumentReader({dir_}, ReaderOptions{}); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { DocumentReader({}, ReaderOptions{}); }).find("no input"), std::string::npos);

  {
    kiln::data::LineWriter writer(dir_ / "full.jsonl.zst");
    for (int i = 0; i < 20000; ++i) writer.write_line("{\"text\": \"document number " + std::to_string(i) + "\"}");
    writer.close();
  }
  std::ifstream in(dir_ / "full.jsonl.zst", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto truncated = write("cut.jsonl.zst", bytes.substr(0, bytes.size() / 2));
  DocumentReader reader({truncated}, ReaderOptions{});
  const auto message = error_of([&] { read_all(reader); });
  EXPECT_NE(message.find("truncated zstd"), std::string::npos) << message;

  const auto garbage = write("garbage.jsonl.zst", "this is not zstd at all");
  DocumentReader garbage_reader({garbage}, ReaderOptions{});
  EXPECT_NE(error_of([&] { read_all(garbage_reader); }).find("not valid zstd"), std::string::npos);
}

TEST_F(DocumentReaderTest, LineWriterLeavesNothingBehindWhenNotClosed) {
  const auto path = dir_ / "unfinished.jsonl";
  {
    kiln::data::LineWriter writer(path);
    writer.write_line("{}");
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

}  // namespace

namespace {

TEST_F(DocumentReaderTest, ADuplicateTextKeyIsRefusedWithFileAndLine) {
  const auto path = write("dup.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"first\", \"id\": 2, \"text\": \"second\"}\n");
  DocumentReader reader({path}, ReaderOptions{});
  const auto message = error_of([&] { read_all(reader); });
  EXPECT_NE(message.find(path.string() + ":2: field \"text\" appears 2 times"), std::string::npos) << message;
}

TEST_F(DocumentReaderTest, FifosAndDevicesAreRefusedUpFront) {
  const auto fifo = dir_ / "pipe.jsonl";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without the check the reader would block on the FIFO, or read /dev/zero forever.
  EXPECT_NE(error_of([&] { DocumentReader({fifo}, ReaderOptions{}); }).find("is a FIFO"), std::string::npos);
  EXPECT_NE(error_of([&] { DocumentReader({"/dev/zero"}, ReaderOptions{}); }).find("is a character device"),
            std::string::npos);
}

}  // namespace
