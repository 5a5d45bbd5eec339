#include "data/tokenizer/tokenizer_json.hpp"

#include <nlohmann/json.hpp>

#include "data/tokenizer/strict_json.hpp"
#include "trainer/core/error.hpp"

namespace kiln::tok {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Field access that reports the source and the field's path in every error.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  [[noreturn]] void fail_field(std::string_view path, std::string_view what) const {
    fail("tokenizer '{}': field '{}' {}", source_, path, what);
  }
  [[noreturn]] void unsupported(std::string_view what) const {
    fail("tokenizer '{}': {} is not supported by kiln (it supports byte-level BPE: see "
         "data/tokenizer/tokenizer.hpp)",
         source_, what);
  }

  const Json& require(const Json& object, std::string_view key, std::string_view path) const {
    const auto it = object.find(key);
    if (it == object.end()) fail_field(join(path, key), "is missing");
    return *it;
  }
  const Json* optional(const Json& object, std::string_view key) const {
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }
  std::string string(const Json& value, std::string_view path) const {
    if (!value.is_string()) fail_field(path, "must be a string");
    return value.get<std::string>();
  }
  std::string string_field(const Json& object, std::string_view key, std::string_view path) const {
    return string(require(object, key, path), join(path, key));
  }
  bool bool_field(const Json& object, std::string_view key, std::string_view path, bool fallback) const {
    const Json* value = optional(object, key);
    if (value == nullptr) return fallback;
    return boolean(*value, join(path, key));
  }
  // A field `tokenizers` cannot do without (serde has no default for it).
  bool required_bool_field(const Json& object, std::string_view key, std::string_view path) const {
    return boolean(require(object, key, path), join(path, key));
  }
  // Model options `tokenizers` reads as Option<bool>: null means the default.
  bool nullable_bool_field(const Json& object, std::string_view key, std::string_view path, bool fallback) const {
    const Json* value = optional(object, key);
    if (value == nullptr || value->is_null()) return fallback;
    return boolean(*value, join(path, key));
  }
  bool boolean(const Json& value, std::string_view path) const {
    if (!value.is_boolean()) fail_field(path, "must be true or false");
    return value.get<bool>();
  }
  TokenId id(const Json& value, std::string_view path) const {
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() > 0xFFFFFFFEULL) {
      fail_field(path, "must be a token id (an integer from 0 to 4294967294)");
    }
    return static_cast<TokenId>(value.get<std::uint64_t>());
  }
  const Json& object(const Json& value, std::string_view path) const {
    if (!value.is_object()) fail_field(path, "must be an object");
    return value;
  }
  const Json& array(const Json& value, std::string_view path) const {
    if (!value.is_array()) fail_field(path, "must be an array");
    return value;
  }
  std::string type_of(const Json& object, std::string_view path) const { return string_field(object, "type", path); }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }
  static std::string index(std::string_view path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

  // Runs `build`, prefixing any kiln::Error it throws with the source and field.
  template <class Build>
  auto in_field(std::string_view path, Build&& build) const {
    try {
      return build();
    } catch (const Error& error) {
      fail("tokenizer '{}': field '{}': {}", source_, path, error.what());
    }
  }

 private:
  std::string source_;
};

// ---- model ----------------------------------------------------------------------------------

std::pair<std::string, std::string> parse_merge(const Reader& reader, const Json& merge, const std::string& path,
                                                bool& as_pairs) {
  if (merge.is_array()) {
    if (merge.size() != 2) reader.fail_field(path, "must be a pair of tokens");
    as_pairs = true;
    return {reader.string(merge[0], path + "[0]"), reader.string(merge[1], path + "[1]")};
  }
  if (!merge.is_string()) reader.fail_field(path, "must be a string \"a b\" or a pair [\"a\", \"b\"]");
  as_pairs = false;
  const auto text = merge.get<std::string>();
  const auto space = text.find(' ');
  if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
    reader.fail_field(path, fmt::format("('{}') must be two tokens separated by one space", text));
  }
  return {text.substr(0, space), text.substr(space + 1)};
}

void refuse_model_options(const Reader& reader, const Json& model) {
  if (const Json* dropout = reader.optional(model, "dropout"); dropout && !dropout->is_null()) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) reader.unsupported("model.dropout (BPE dropout)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* value = reader.optional(model, key);
    if (value && !value->is_null() && !(value->is_string() && value->get<std::string>().empty())) {
      reader.unsupported(fmt::format("model.{}", key));
    }
  }
  if (reader.nullable_bool_field(model, "byte_fallback", "model", false)) reader.unsupported("model.byte_fallback");
}

BpeModel parse_model(const Reader& reader, const Json& model) {
  reader.object(model, "model");
  if (const Json* type = reader.optional(model, "type")) {
    const auto name = reader.string(*type, "model.type");
    if (name != "BPE") reader.unsupported(fmt::format("model type '{}'", name));
  }
  refuse_model_options(reader, model);

  BpeOptions options;
  if (const Json* unk = reader.optional(model, "unk_token"); unk && !unk->is_null()) {
    options.unk_token = reader.string(*unk, "model.unk_token");
  }
  options.fuse_unk = reader.nullable_bool_field(model, "fuse_unk", "model", false);
  options.ignore_merges = reader.nullable_bool_field(model, "ignore_merges", "model", false);
  const Json* dropout = reader.optional(model, "dropout");
  options.dropout_written_as_zero = dropout != nullptr && dropout->is_number();

  const Json& vocab_json = reader.object(reader.require(model, "vocab", "model"), "model.vocab");
  std::vector<std::pair<std::string, TokenId>> vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) vocab.emplace_back(token, reader.id(id, "model.vocab." + token));

  const Json& merges_json = reader.array(reader.require(model, "merges", "model"), "model.merges");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json.size());
  for (std::size_t i = 0; i < merges_json.size(); ++i) {
    merges.push_back(parse_merge(reader, merges_json[i], Reader::index("model.merges", i), options.merges_as_pairs));
  }
  return reader.in_field("model", [&] { return BpeModel(std::move(vocab), std::move(merges), options); });
}

// ---- added tokens ---------------------------------------------------------------------------

std::vector<AddedToken> parse_added_tokens(const Reader& reader, const Json* list) {
  std::vector<AddedToken> tokens;
  if (list == nullptr) return tokens;
  reader.array(*list, "added_tokens");
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto path = Reader::index("added_tokens", i);
    const Json& entry = reader.object((*list)[i], path);
    AddedToken token;
    token.id = reader.id(reader.require(entry, "id", path), path + ".id");
    token.content = reader.string_field(entry, "content", path);
    // `tokenizers` requires every flag of an added token.
    token.special = reader.required_bool_field(entry, "special", path);
    token.single_word = reader.required_bool_field(entry, "single_word", path);
    token.lstrip = reader.required_bool_field(entry, "lstrip", path);
    token.rstrip = reader.required_bool_field(entry, "rstrip", path);
    token.normalized = reader.required_bool_field(entry, "normalized", path);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// ---- pre-tokenizer --------------------------------------------------------------------------

PreTokenizerStep parse_pre_tokenizer_step(const Reader& reader, const Json& step, const std::string& path) {
  reader.object(step, path);
  const auto type = reader.type_of(step, path);
  if (type == "ByteLevel") {
    return PreTokenizerStep::byte_level(reader.required_bool_field(step, "add_prefix_space", path),
                                        reader.required_bool_field(step, "trim_offsets", path),
                                        reader.bool_field(step, "use_regex", path, true));
  }
  if (type != "Split") reader.unsupported(fmt::format("pre-tokenizer '{}' ({})", type, path));
  const auto behavior_name = reader.string_field(step, "behavior", path);
  const auto behavior = split_behavior_named(behavior_name);
  if (!behavior) {
    reader.fail_field(path + ".behavior", fmt::format("('{}') must be one of Removed, Isolated, MergedWithPrevious, "
                                                      "MergedWithNext, Contiguous", behavior_name));
  }
  const bool invert = reader.required_bool_field(step, "invert", path);
  const auto pattern_path = path + ".pattern";
  const Json& pattern = reader.object(reader.require(step, "pattern", path), pattern_path);
  const bool is_regex = pattern.contains("Regex");
  if (pattern.size() != 1 || (!is_regex && !pattern.contains("String"))) {
    reader.fail_field(pattern_path, "must be {\"Regex\": ...} or {\"String\": ...} (exactly one key)");
  }
  const auto text = reader.string_field(pattern, is_regex ? "Regex" : "String", pattern_path);
  return reader.in_field(pattern_path, [&] { return PreTokenizerStep::split(text, is_regex, *behavior, invert); });
}

PreTokenizer parse_pre_tokenizer(const Reader& reader, const Json* pre) {
  if (pre == nullptr || pre->is_null()) reader.unsupported("pre_tokenizer null (kiln needs a ByteLevel pre-tokenizer)");
  reader.object(*pre, "pre_tokenizer");
  std::vector<PreTokenizerStep> steps;
  const bool sequence = reader.type_of(*pre, "pre_tokenizer") == "Sequence";
  if (sequence) {
    const Json& list = reader.array(reader.require(*pre, "pretokenizers", "pre_tokenizer"), "pre_tokenizer.pretokenizers");
    for (std::size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_pre_tokenizer_step(reader, list[i], Reader::index("pre_tokenizer.pretokenizers", i)));
    }
  } else {
    steps.push_back(parse_pre_tokenizer_step(reader, *pre, "pre_tokenizer"));
  }
  return reader.in_field("pre_tokenizer", [&] { return PreTokenizer(std::move(steps), sequence); });
}

// ---- post-processor -------------------------------------------------------------------------

// Ids of one {"SpecialToken": {"id": name}} template item, from the template's special_tokens.
std::vector<TokenId> special_ids(const Reader& reader, const Json& processor, const std::string& name,
                                 const std::string& path) {
  const Json& specials = reader.object(reader.require(processor, "special_tokens", path), path + ".special_tokens");
  const auto entry_path = path + ".special_tokens." + name;
  if (!specials.contains(name)) reader.fail_field(entry_path, "is missing (the template uses it)");
  const Json& ids_json = reader.array(reader.require(specials[name], "ids", entry_path), entry_path + ".ids");
  std::vector<TokenId> ids;
  for (std::size_t i = 0; i < ids_json.size(); ++i) ids.push_back(reader.id(ids_json[i], Reader::index(entry_path + ".ids", i)));
  return ids;
}

PostProcessorStep parse_template(const Reader& reader, const Json& processor, const std::string& path) {
  PostProcessorStep step;
  step.kind = PostProcessorStep::Kind::Template;
  step.template_json = processor;
  reader.array(reader.require(processor, "pair", path), path + ".pair");
  const Json& single = reader.array(reader.require(processor, "single", path), path + ".single");
  bool seen_sequence = false;
  for (std::size_t i = 0; i < single.size(); ++i) {
    const auto item_path = Reader::index(path + ".single", i);
    const Json& item = reader.object(single[i], item_path);
    if (const Json* special = reader.optional(item, "SpecialToken")) {
      const auto name = reader.string_field(reader.object(*special, item_path + ".SpecialToken"), "id", item_path + ".SpecialToken");
      auto ids = special_ids(reader, processor, name, path);
      auto& target = seen_sequence ? step.after : step.before;
      target.insert(target.end(), ids.begin(), ids.end());
    } else if (const Json* sequence = reader.optional(item, "Sequence")) {
      const auto id = reader.string_field(reader.object(*sequence, item_path + ".Sequence"), "id", item_path + ".Sequence");
      if (id != "A" || seen_sequence) reader.unsupported(fmt::format("a single-sequence template with sequence '{}' ({})", id, item_path));
      seen_sequence = true;
    } else {
      reader.fail_field(item_path, "must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
  }
  if (!seen_sequence) reader.unsupported(fmt::format("a template without the sequence $A ({}.single)", path));
  return step;
}

PostProcessorStep parse_post_processor_step(const Reader& reader, const Json& processor, const std::string& path) {
  reader.object(processor, path);
  const auto type = reader.type_of(processor, path);
  if (type == "TemplateProcessing") return parse_template(reader, processor, path);
  if (type != "ByteLevel") reader.unsupported(fmt::format("post-processor '{}' ({})", type, path));
  PostProcessorStep step;
  step.add_prefix_space = reader.required_bool_field(processor, "add_prefix_space", path);
  step.trim_offsets = reader.required_bool_field(processor, "trim_offsets", path);
  step.use_regex = reader.bool_field(processor, "use_regex", path, true);
  return step;
}

PostProcessor parse_post_processor(const Reader& reader, const Json* post) {
  if (post == nullptr || post->is_null()) return PostProcessor();
  reader.object(*post, "post_processor");
  std::vector<PostProcessorStep> steps;
  const bool sequence = reader.type_of(*post, "post_processor") == "Sequence";
  if (sequence) {
    const Json& list = reader.array(reader.require(*post, "processors", "post_processor"), "post_processor.processors");
    for (std::size_t i = 0; i < list.size(); ++i) {
      steps.push_back(parse_post_processor_step(reader, list[i], Reader::index("post_processor.processors", i)));
    }
  } else {
    steps.push_back(parse_post_processor_step(reader, *post, "post_processor"));
  }
  return PostProcessor(std::move(steps), sequence);
}

// ---- decoder and the top level --------------------------------------------------------------

std::optional<ByteLevelDecoder> parse_decoder(const Reader& reader, const Json* decoder) {
  if (decoder == nullptr || decoder->is_null()) return std::nullopt;
  reader.object(*decoder, "decoder");
  const auto type = reader.type_of(*decoder, "decoder");
  if (type != "ByteLevel") reader.unsupported(fmt::format("decoder '{}'", type));
  return ByteLevelDecoder{reader.required_bool_field(*decoder, "add_prefix_space", "decoder"),
                          reader.required_bool_field(*decoder, "trim_offsets", "decoder"),
                          reader.bool_field(*decoder, "use_regex", "decoder", true)};
}

void refuse_top_level_features(const Reader& reader, const Json& root) {
  if (const Json* version = reader.optional(root, "version")) {
    const auto text = reader.string(*version, "version");
    if (text != "1.0") reader.unsupported(fmt::format("tokenizer.json version '{}' (expected \"1.0\")", text));
  }
  for (const char* key : {"truncation", "padding"}) {
    if (const Json* value = reader.optional(root, key); value && !value->is_null()) reader.unsupported(key);
  }
  if (const Json* normalizer = reader.optional(root, "normalizer"); normalizer && !normalizer->is_null()) {
    const auto type = normalizer->is_object() && normalizer->contains("type") && (*normalizer)["type"].is_string()
                          ? (*normalizer)["type"].get<std::string>()
                          : std::string("?");
    reader.unsupported(fmt::format("normalizer '{}'", type));
  }
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> parse_tokenizer_json(std::string_view json_text, std::string_view source_name) {
  const Reader reader(source_name);
  const Json root = parse_strict_json(json_text, "tokenizer", source_name);
  reader.object(root, "(top level)");
  refuse_top_level_features(reader, root);
  BpeModel model = parse_model(reader, reader.require(root, "model", ""));
  auto added_tokens = parse_added_tokens(reader, reader.optional(root, "added_tokens"));
  PreTokenizer pre = parse_pre_tokenizer(reader, reader.optional(root, "pre_tokenizer"));
  PostProcessor post = parse_post_processor(reader, reader.optional(root, "post_processor"));
  auto decoder = parse_decoder(reader, reader.optional(root, "decoder"));
  return std::make_unique<Tokenizer::Impl>(std::move(model), added_tokens, std::move(pre), std::move(post), decoder);
}

// ---- writing --------------------------------------------------------------------------------

namespace {

std::string json_string(std::string_view text) { return Json(std::string(text)).dump(); }

// A nested value pretty-printed with two spaces, its lines shifted right by `depth` levels.
std::string nested(const OrderedJson& value, int depth) {
  std::string text = value.dump(2);
  const std::string margin(static_cast<std::size_t>(depth) * 2, ' ');
  std::string out;
  out.reserve(text.size() + 64);
  for (const char c : text) {
    out += c;
    if (c == '\n') out += margin;
  }
  return out;
}

OrderedJson byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return OrderedJson{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space},
                     {"trim_offsets", trim_offsets}, {"use_regex", use_regex}};
}

OrderedJson pre_tokenizer_step_json(const PreTokenizerStep& step) {
  if (step.kind == PreTokenizerStep::Kind::ByteLevel) {
    return byte_level_json(step.add_prefix_space, step.trim_offsets, step.use_regex);
  }
  return OrderedJson{{"type", "Split"},
                     {"pattern", OrderedJson{{step.pattern_is_regex ? "Regex" : "String", step.pattern}}},
                     {"behavior", name_of(step.behavior)},
                     {"invert", step.invert}};
}

OrderedJson pre_tokenizer_json(const PreTokenizer& pre) {
  if (!pre.written_as_sequence()) return pre_tokenizer_step_json(pre.steps().front());
  OrderedJson list = OrderedJson::array();
  for (const auto& step : pre.steps()) list.push_back(pre_tokenizer_step_json(step));
  return OrderedJson{{"type", "Sequence"}, {"pretokenizers", list}};
}

OrderedJson post_processor_step_json(const PostProcessorStep& step) {
  if (step.kind == PostProcessorStep::Kind::Template) {
    OrderedJson out{{"type", "TemplateProcessing"}};
    for (const char* key : {"single", "pair", "special_tokens"}) {
      if (step.template_json.contains(key)) out[key] = OrderedJson::parse(step.template_json[key].dump());
    }
    return out;
  }
  return byte_level_json(step.add_prefix_space, step.trim_offsets, step.use_regex);
}

OrderedJson post_processor_json(const PostProcessor& post) {
  if (post.is_null()) return nullptr;
  if (!post.written_as_sequence()) return post_processor_step_json(post.steps().front());
  OrderedJson list = OrderedJson::array();
  for (const auto& step : post.steps()) list.push_back(post_processor_step_json(step));
  return OrderedJson{{"type", "Sequence"}, {"processors", list}};
}

void write_added_tokens(const Tokenizer::Impl& impl, std::string& out) {
  out += "  \"added_tokens\": [";
  const auto& tokens = impl.added.tokens();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto& token = tokens[i];
    const OrderedJson entry{{"id", token.id},           {"content", token.content},
                            {"single_word", token.single_word}, {"lstrip", token.lstrip},
                            {"rstrip", token.rstrip},   {"normalized", token.normalized},
                            {"special", token.special}};
    out += i == 0 ? "\n    " : ",\n    ";
    out += nested(entry, 2);
  }
  out += tokens.empty() ? "],\n" : "\n  ],\n";
}

void write_model(const BpeModel& model, std::string& out) {
  const auto& options = model.options();
  out += "  \"model\": {\n    \"type\": \"BPE\",\n";
  out += fmt::format("    \"dropout\": {},\n", options.dropout_written_as_zero ? "0.0" : "null");
  out += fmt::format("    \"unk_token\": {},\n", options.unk_token ? json_string(*options.unk_token) : "null");
  out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n";
  out += fmt::format("    \"fuse_unk\": {},\n    \"byte_fallback\": false,\n    \"ignore_merges\": {},\n",
                     options.fuse_unk, options.ignore_merges);
  out += "    \"vocab\": {";
  const auto vocab = model.vocab_by_id();
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    out += i == 0 ? "\n      " : ",\n      ";
    out += json_string(vocab[i].first);
    out += ": ";
    out += std::to_string(vocab[i].second);
  }
  out += vocab.empty() ? "},\n" : "\n    },\n";
  out += "    \"merges\": [";
  const auto& merges = model.merges();
  for (std::size_t i = 0; i < merges.size(); ++i) {
    out += i == 0 ? "\n      " : ",\n      ";
    if (options.merges_as_pairs) {
      out += '[';
      out += json_string(merges[i].first);
      out += ", ";
      out += json_string(merges[i].second);
      out += ']';
    } else {
      out += json_string(merges[i].first + " " + merges[i].second);
    }
  }
  out += merges.empty() ? "]\n" : "\n    ]\n";
  out += "  }\n";
}

}  // namespace

std::string write_tokenizer_json(const Tokenizer::Impl& impl) {
  std::string out = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
  write_added_tokens(impl, out);
  out += "  \"normalizer\": null,\n";
  out += "  \"pre_tokenizer\": ";
  out += nested(pre_tokenizer_json(impl.pre_tokenizer), 1);
  out += ",\n";
  out += "  \"post_processor\": ";
  out += nested(post_processor_json(impl.post_processor), 1);
  out += ",\n";
  const OrderedJson decoder = impl.decoder ? byte_level_json(impl.decoder->add_prefix_space, impl.decoder->trim_offsets,
                                                             impl.decoder->use_regex)
                                           : OrderedJson(nullptr);
  out += "  \"decoder\": ";
  out += nested(decoder, 1);
  out += ",\n";
  write_model(impl.model, out);
  out += "}\n";
  return out;
}

}  // namespace kiln::tok
