#include "data/tokenizer/strict_json.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::tok {

namespace {

using Json = nlohmann::json;

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

// Where the parser is: one frame per open object or array, so that errors can name the field.
class FieldTracker {
 public:
  // A key in the innermost object; false when that object already had it.
  bool enter_key(const std::string& key) {
    Frame& frame = frames_.back();
    frame.current = key;
    return frame.keys.insert(key).second;
  }
  void open(bool is_object) { frames_.push_back(Frame{is_object, {}, {}, 0}); }
  void close() {
    frames_.pop_back();
    count_element();
  }
  // A primitive value or a finished container: the next array element starts.
  void count_element() {
    if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().elements;
  }

  // "model.vocab" / "added_tokens[3].id"; "(top level)" outside any object.
  std::string path() const {
    std::string out;
    for (const Frame& frame : frames_) {
      if (frame.is_object) {
        if (frame.current.empty() && &frame == &frames_.back()) break;
        if (!out.empty()) out += '.';
        out += frame.current;
      } else {
        out += fmt::format("[{}]", frame.elements);
      }
    }
    return out.empty() ? "(top level)" : out;
  }
  // The path of the object holding the current key.
  std::string object_path() const {
    FieldTracker parent = *this;
    parent.frames_.back().current.clear();
    return parent.path();
  }

 private:
  struct Frame {
    bool is_object;
    std::unordered_set<std::string> keys;
    std::string current;
    std::size_t elements;
  };
  std::vector<Frame> frames_;
};

}  // namespace

Json parse_strict_json(std::string_view text, std::string_view what, std::string_view source) {
  if (text.starts_with(kByteOrderMark)) {
    fail("{} '{}' starts with a UTF-8 byte order mark (EF BB BF): expected plain JSON, as `tokenizers` does",
         what, source);
  }
  FieldTracker tracker;
  const Json::parser_callback_t track = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: tracker.open(true); break;
      case Json::parse_event_t::array_start: tracker.open(false); break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end: tracker.close(); break;
      case Json::parse_event_t::value: tracker.count_element(); break;
      case Json::parse_event_t::key: {
        const auto key = parsed.get<std::string>();
        if (!tracker.enter_key(key)) {
          fail("{} '{}': field '{}' has the key '{}' twice: expected each key once", what, source,
               tracker.object_path(), key);
        }
        break;
      }
    }
    return true;
  };
  try {
    return Json::parse(text, track);
  } catch (const Json::parse_error& error) {
    fail("{} '{}': malformed JSON: {}", what, source, error.what());
  } catch (const Json::out_of_range& error) {
    fail("{} '{}': field '{}' holds a number JSON cannot represent as a double ({}): expected a finite number",
         what, source, tracker.path(), error.what());
  }
}

}  // namespace kiln::tok
