#include "trainer/config/yaml_document.hpp"

#include <fmt/format.h>

#include <yaml-cpp/eventhandler.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "trainer/config/yaml_path.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::config {

namespace {

// Aliases let a few lines name the same subtree many times over; a walk that would visit more
// nodes than any recipe has is an alias bomb, not a recipe.
constexpr std::size_t kMaxNodesVisited = 1'000'000;
constexpr int kMaxDepth = 64;

std::string at(std::string_view source_name, const YAML::Node& node) {
  const std::string position = yaml_position(node);
  return position.empty() ? std::string(source_name) : fmt::format("{}:{}", source_name, position);
}

class DuplicateKeyFinder {
 public:
  explicit DuplicateKeyFinder(std::string_view source_name) : source_name_(source_name) {}

  void check(const YAML::Node& node, const std::string& path, int depth) {
    if (++visited_ > kMaxNodesVisited) {
      fail("{}: the document expands to more than {} nodes (aliases repeated over and over?). Fix: write the "
           "values out",
           source_name_, kMaxNodesVisited);
    }
    if (depth > kMaxDepth) {
      fail("{}: {}: nested deeper than {} levels. Fix: flatten it", at(source_name_, node), path, kMaxDepth);
    }
    if (node.IsSequence()) {
      for (std::size_t i = 0; i < node.size(); ++i) check(node[i], fmt::format("{}[{}]", path, i), depth + 1);
    } else if (node.IsMap()) {
      check_mapping(node, path, depth);
    }
  }

 private:
  void check_mapping(const YAML::Node& mapping, const std::string& path, int depth) {
    std::map<std::string, YAML::Node> first_written;
    for (const auto& entry : mapping) {
      // A non-scalar key ({[a]: 1}) is reported by the loaders, which know what keys may be.
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : describe_yaml_node(entry.first);
      const std::string key_path = path.empty() ? key : path + "." + key;
      const auto [earlier, inserted] = first_written.emplace(key, entry.first);
      if (!inserted) {
        const std::string first_at = yaml_position(earlier->second);
        fail("{}: {}: duplicate key{}. Fix: keep one of them (yaml-cpp would silently use only one)",
             at(source_name_, entry.first), key_path,
             first_at.empty() ? std::string() : fmt::format(" (first written at {})", first_at));
      }
      check(entry.second, key_path, depth + 1);
    }
  }

  std::string_view source_name_;
  std::size_t visited_ = 0;
};

// Where a second document starts, if the text has one. yaml-cpp's LoadAll cannot be used for
// this: on some malformed text (a lone `,` line after a mapping) its parser reports an empty
// document at the same place forever, so LoadAll never returns. Asking the parser for at most
// two documents ends either way.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { last_start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark last_start;
};

std::optional<YAML::Mark> second_document_start(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentStarts starts;
  if (!parser.HandleNextDocument(starts)) return std::nullopt;
  if (!parser.HandleNextDocument(starts)) return std::nullopt;
  return starts.last_start;
}

[[noreturn]] void fail_malformed(std::string_view source_name, const YAML::Exception& error) {
  fail("{}:{}:{}: malformed YAML: {}. Fix: correct the syntax there (indentation with spaces, "
       "`key: value` pairs)",
       source_name, error.mark.line + 1, error.mark.column + 1, error.msg);
}

}  // namespace

YAML::Node load_yaml_document(std::string_view text, std::string_view source_name) {
  const std::string owned(text);
  YAML::Node document;
  std::optional<YAML::Mark> second;
  try {
    document = YAML::Load(owned);
    second = second_document_start(owned);
  } catch (const YAML::Exception& error) {
    fail_malformed(source_name, error);
  }
  if (second) {
    fail("{}:{}:{}: a second YAML document (after `---`, or text that cannot continue the first one); kiln "
         "reads exactly one. Fix: remove the `---` line and merge or delete what follows, or correct the "
         "syntax there",
         source_name, second->line + 1, second->column + 1);
  }
  DuplicateKeyFinder(source_name).check(document, "", 0);
  return document;
}

YAML::Node load_yaml_file(const std::filesystem::path& path, std::string_view role) {
  return load_yaml_document(read_text_file(path, role, kMaxRecipeBytes), path.string());
}

}  // namespace kiln::config
