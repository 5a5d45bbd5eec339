// Single-thread encode throughput of kiln's tokenizer, driven by scripts/bench_tokenizer.sh.
//
//   kiln_tokenizer_bench TOKENIZER.json DOCS.jsonl [REPEATS]
//
// Loads every {"text": ...} document into memory, then encodes them one by one (as
// `tokenizers`' encode per document does) REPEATS times and prints one JSON line: bytes,
// best seconds, MB/s, and the token count and id sum (to check against `tokenizers`).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/core/error.hpp"

namespace {

std::vector<std::string> read_documents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) kiln::fail("cannot open '{}'", path);
  std::vector<std::string> documents;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) documents.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return documents;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER.json DOCS.jsonl [REPEATS]\n", argv[0]);
    return 2;
  }
  try {
    const auto tokenizer = kiln::tok::Tokenizer::load(argv[1]);
    const auto documents = read_documents(argv[2]);
    const int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
    std::size_t bytes = 0;
    for (const auto& document : documents) bytes += document.size();

    double best_seconds = 1e30;
    std::uint64_t tokens = 0;
    std::uint64_t id_sum = 0;
    for (int repeat = 0; repeat < repeats; ++repeat) {
      tokens = id_sum = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const auto& document : documents) {
        const auto ids = tokenizer.encode(document, true);
        tokens += ids.size();
        for (const auto id : ids) id_sum += id;
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best_seconds = std::min(best_seconds, seconds);
    }
    std::printf("{\"bytes\": %zu, \"seconds\": %.4f, \"mb_per_s\": %.2f, \"tokens\": %llu, \"id_sum\": %llu}\n", bytes,
                best_seconds, static_cast<double>(bytes) / 1e6 / best_seconds, static_cast<unsigned long long>(tokens),
                static_cast<unsigned long long>(id_sum));
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kiln_tokenizer_bench: %s\n", error.what());
    return 1;
  }
}
