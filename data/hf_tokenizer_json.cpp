// open_hf_tokenizer(): the Hugging Face tokenizer.json reader behind "hf:FILE".
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "data/hf_bpe_tokenizer.h"

namespace rw {
namespace {

using nlohmann::json;

constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr const char* kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

json read_json(const std::string& path, const char* what) {
  std::ifstream in(path);
  RW_USER_CHECK(in.good(), "cannot read %s %s: %s", what, path.c_str(), std::strerror(errno));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw UserError(std::string(what) + " " + path + " is not valid JSON: " + e.what());
  }
}

// The checks of one file: every error names it and the field.
struct Fields {
  const std::string& path;

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw UserError("tokenizer file " + path + ": field '" + field + "' " + problem);
  }
  const json& get(const json& object, const char* key, const std::string& where) const {
    if (!object.is_object() || !object.contains(key)) fail(where + key, "is missing");
    return object[key];
  }
  // An optional setting that ringwise supports only at its default (null or `plain`).
  void require_default(const json& object, const char* key, const std::string& where, const json& plain) const {
    if (!object.contains(key) || object[key].is_null() || object[key] == plain) return;
    fail(where + key, "is " + object[key].dump() + "; ringwise supports only " + plain.dump());
  }
  std::string type_of(const json& object, const std::string& where) const {
    const json& type = get(object, "type", where);
    if (!type.is_string()) fail(where + "type", "is not a string");
    return type.get<std::string>();
  }
};

// ByteLevel alone, Digits(individual_digits) then ByteLevel, or Split(GPT-2 / LLaMA-3 pattern,
// Isolated) then ByteLevel without its own regex: what byte-level BPE tokenizers use.
PretokenizerOptions read_pretokenizer(const Fields& f, const json& root) {
  const json& pre = f.get(root, "pre_tokenizer", "");
  if (pre.is_null()) f.fail("pre_tokenizer", "is null; ringwise needs a ByteLevel pre-tokenizer");
  std::vector<std::pair<json, std::string>> steps;  // (step, its field path)
  if (f.type_of(pre, "pre_tokenizer.") == "Sequence") {
    const json& list = f.get(pre, "pretokenizers", "pre_tokenizer.");
    if (!list.is_array() || list.empty()) f.fail("pre_tokenizer.pretokenizers", "is not a non-empty list");
    for (size_t i = 0; i < list.size(); ++i)
      steps.emplace_back(list[i], "pre_tokenizer.pretokenizers[" + std::to_string(i) + "].");
  } else {
    steps.emplace_back(pre, "pre_tokenizer.");
  }
  PretokenizerOptions options;
  bool have_pattern = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& [step, at] = steps[i];
    const std::string type = f.type_of(step, at);
    const bool last = i + 1 == steps.size();
    if (type == "Digits" && !have_pattern && !last) {
      if (f.get(step, "individual_digits", at) != true) f.fail(at + "individual_digits", "must be true");
      options.individual_digits = true;
    } else if (type == "Split" && !have_pattern && !last) {
      const json& pattern = f.get(step, "pattern", at);
      const json regex = pattern.is_object() && pattern.contains("Regex") ? pattern["Regex"] : json();
      if (regex == kGpt2Pattern) {
        options.pattern = SplitPattern::kGpt2;
      } else if (regex == kLlama3Pattern) {
        options.pattern = SplitPattern::kLlama3;
      } else {
        f.fail(at + "pattern", "is " + pattern.dump() + "; ringwise knows the GPT-2 and LLaMA-3 split regexes only");
      }
      if (f.get(step, "behavior", at) != "Isolated") f.fail(at + "behavior", "must be \"Isolated\"");
      f.require_default(step, "invert", at, false);
      have_pattern = true;
    } else if (type == "ByteLevel" && last) {
      f.require_default(step, "add_prefix_space", at, false);
      const bool use_regex = !step.contains("use_regex") || step["use_regex"] == true;
      if (use_regex == have_pattern)
        f.fail(at + "use_regex",
               have_pattern ? "must be false after a Split" : "must be true without a Split before it");
    } else {
      f.fail(at + "type", "\"" + type + "\" is not supported here (ringwise reads a final ByteLevel, optionally " +
                              "after Digits and/or a GPT-2 or LLaMA-3 Split)");
    }
  }
  return options;
}

void put_token(const Fields& f, HfBpeDefinition& def, const json& id_value, const std::string& token,
               const std::string& where) {
  if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 || id_value.get<int64_t>() >= (int64_t{1} << 30))
    f.fail(where, "has id " + id_value.dump() + ", not an integer in [0, 2^30)");
  const size_t id = id_value.get<size_t>();
  if (def.tokens.size() <= id) def.tokens.resize(id + 1);
  if (!def.tokens[id].empty() && def.tokens[id] != token)
    f.fail(where, "gives id " + std::to_string(id) + " to both \"" + def.tokens[id] + "\" and \"" + token + "\"");
  def.tokens[id] = token;
}

// The BPE model: vocabulary, merges (as "left right" or [left, right]), unk_token, ignore_merges.
void read_model(const Fields& f, const json& root, HfBpeDefinition& def) {
  const json& model = f.get(root, "model", "");
  const std::string type = f.type_of(model, "model.");
  if (type != "BPE") f.fail("model.type", "is \"" + type + "\"; ringwise reads byte-level BPE models only");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    f.require_default(model, key, "model.", "");
  f.require_default(model, "byte_fallback", "model.", false);
  f.require_default(model, "dropout", "model.", 0.0);
  def.ignore_merges = model.contains("ignore_merges") && model["ignore_merges"] == true;

  const json& vocab = f.get(model, "vocab", "model.");
  if (!vocab.is_object() || vocab.empty()) f.fail("model.vocab", "is not a non-empty object of token: id");
  for (const auto& [token, id] : vocab.items()) put_token(f, def, id, token, "model.vocab");

  const json& merges = f.get(model, "merges", "model.");
  if (!merges.is_array()) f.fail("model.merges", "is not a list");
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    const std::string at = "model.merges[" + std::to_string(i) + "]";
    if (m.is_string()) {  // "left right" (tokens of the byte alphabet never hold a plain space)
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == s.size()) f.fail(at, "is not \"left right\"");
      def.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      def.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      f.fail(at, "is neither \"left right\" nor [left, right]");
    }
  }

  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    const json& unk = model["unk_token"];
    if (!unk.is_string() || !vocab.contains(unk.get<std::string>()))
      f.fail("model.unk_token", "is not a token of the vocabulary");
    def.unk_token = vocab[unk.get<std::string>()].get<int32_t>();
    def.fuse_unk = model.contains("fuse_unk") && model["fuse_unk"] == true;
  }
}

// Added tokens, matched whole before pre-tokenizing; returns their list.
json read_added_tokens(const Fields& f, const json& root, HfBpeDefinition& def) {
  const json added =
      root.contains("added_tokens") && !root["added_tokens"].is_null() ? root["added_tokens"] : json::array();
  if (!added.is_array()) f.fail("added_tokens", "is not a list");
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string at = "added_tokens[" + std::to_string(i) + "].";
    const json& content = f.get(added[i], "content", at);
    if (!content.is_string() || content.get<std::string>().empty()) f.fail(at + "content", "is not a non-empty string");
    for (const char* key : {"lstrip", "rstrip", "single_word"}) f.require_default(added[i], key, at, false);
    put_token(f, def, f.get(added[i], "id", at), content.get<std::string>(), at + "id");
    def.added_tokens.push_back(added[i]["id"].get<int32_t>());
  }
  return added;
}

// eos_token of a tokenizer_config.json beside the file (which must then name a token), else the
// first of the conventional end tokens that is an added token, else none (-1).
int32_t find_eod(const std::string& path, const json& added, const HfBpeDefinition& def) {
  const std::string config = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  if (std::filesystem::exists(config)) {
    const json c = read_json(config, "tokenizer config");
    json eos = c.is_object() && c.contains("eos_token") ? c["eos_token"] : json();
    if (eos.is_object() && eos.contains("content")) eos = eos["content"];
    if (eos.is_string()) {
      auto it = std::find(def.tokens.begin(), def.tokens.end(), eos.get<std::string>());
      RW_USER_CHECK(it != def.tokens.end(), "tokenizer config %s: eos_token %s is not a token of %s", config.c_str(),
                    eos.dump().c_str(), path.c_str());
      return static_cast<int32_t>(it - def.tokens.begin());
    }
  }
  for (const char* name : {"<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"})
    for (const json& t : added)
      if (t["content"] == name) return t["id"].get<int32_t>();
  return -1;
}

}  // namespace

std::unique_ptr<Tokenizer> open_hf_tokenizer(const std::string& spec_path) {
  // A model directory stands for the tokenizer.json in it.
  const std::string path = std::filesystem::is_directory(spec_path)
                               ? (std::filesystem::path(spec_path) / "tokenizer.json").string()
                               : spec_path;
  const json root = read_json(path, "tokenizer file");
  const Fields f{path};
  if (!root.is_object()) f.fail("(top level)", "is not an object");
  HfBpeDefinition def;
  def.spec = "hf:" + spec_path;
  def.file = path;
  read_model(f, root, def);
  const json added = read_added_tokens(f, root, def);
  if (root.contains("normalizer") && !root["normalizer"].is_null())
    f.fail("normalizer", "is " + root["normalizer"].dump().substr(0, 80) + "; byte-level BPE in ringwise has none");
  if (root.contains("decoder") && !root["decoder"].is_null() && f.type_of(root["decoder"], "decoder.") != "ByteLevel")
    f.fail("decoder.type", "is not \"ByteLevel\"");
  def.pretokenizer = read_pretokenizer(f, root);
  def.eod_token = find_eod(path, added, def);
  return make_hf_bpe_tokenizer(std::move(def));
}

}  // namespace rw
