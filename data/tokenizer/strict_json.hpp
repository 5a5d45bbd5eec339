#pragma once
// Parsing a JSON document the way `tokenizers` (serde_json) insists on, where nlohmann-json
// would guess: a UTF-8 byte order mark is refused (nlohmann skips it), a key repeated in one
// object is refused (nlohmann keeps the last; serde refuses it in most structs and kiln refuses
// it everywhere rather than pick one meaning), and a number too large for a double (1e999) is
// reported with the field it is in instead of escaping as an internal error.
#include <string_view>

#include <nlohmann/json.hpp>

namespace kiln::tok {

// Throws kiln::Error "<what> '<source>': ..." naming the field (a path like
// "model.vocab" or "added_tokens[3].id") for every defect above and for malformed JSON.
nlohmann::json parse_strict_json(std::string_view text, std::string_view what, std::string_view source);

}  // namespace kiln::tok
