// open_gguf_tokenizer(): the byte-level BPE tokenizer in a GGUF file's metadata, behind "gguf:FILE".
#include "core/check.h"
#include "data/gguf_file.h"
#include "data/hf_bpe_tokenizer.h"

namespace rw {
namespace {

// llama.cpp's names for pre-tokenizers (tokenizer.ggml.pre) that ringwise implements.
bool read_pre_tokenizer(const std::string& pre, HfBpeDefinition& def) {
  if (pre == "gpt-2") return true;
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
    def.pretokenizer.individual_digits = true;
    return true;
  }
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
    def.pretokenizer.pattern = SplitPattern::kLlama3;
    def.ignore_merges = true;  // as llama.cpp and the LLaMA-3 tokenizer.json do
    return true;
  }
  return false;
}

}  // namespace

std::unique_ptr<Tokenizer> open_gguf_tokenizer(const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  const std::string model = file.get_string("tokenizer.ggml.model");
  RW_USER_CHECK(
      model == "gpt2",
      "GGUF file %s: tokenizer.ggml.model is \"%s\"; ringwise reads byte-level BPE (\"gpt2\") tokenizers only",
      path.c_str(), model.c_str());
  HfBpeDefinition def;
  def.spec = "gguf:" + path;
  def.file = path;
  const std::string pre = file.has("tokenizer.ggml.pre") ? file.get_string("tokenizer.ggml.pre") : "(none)";
  RW_USER_CHECK(
      read_pre_tokenizer(pre, def),
      "GGUF file %s: tokenizer.ggml.pre \"%s\" is not a pre-tokenizer ringwise knows (gpt-2, smollm, starcoder, "
      "refact, llama3, llama-bpe)",
      path.c_str(), pre.c_str());
  def.tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
    RW_USER_CHECK(types.size() == def.tokens.size(),
                  "GGUF file %s: tokenizer.ggml.token_type has %zu entries for %zu tokens", path.c_str(), types.size(),
                  def.tokens.size());
    constexpr int64_t kControl = 3, kUserDefined = 4;  // llama.cpp's token types matched whole
    for (size_t id = 0; id < types.size(); ++id)
      if (types[id] == kControl || types[id] == kUserDefined) def.added_tokens.push_back(static_cast<int32_t>(id));
  }
  const std::vector<std::string> merges = file.get_string_array("tokenizer.ggml.merges");
  for (size_t i = 0; i < merges.size(); ++i) {
    const size_t space = merges[i].find(' ');
    RW_USER_CHECK(space != std::string::npos && space > 0 && space + 1 < merges[i].size(),
                  "GGUF file %s: tokenizer.ggml.merges[%zu] \"%s\" is not \"left right\"", path.c_str(), i,
                  merges[i].c_str());
    def.merges.emplace_back(merges[i].substr(0, space), merges[i].substr(space + 1));
  }
  if (file.has("tokenizer.ggml.eos_token_id")) {
    const int64_t eos = file.get_int("tokenizer.ggml.eos_token_id");
    RW_USER_CHECK(eos >= 0 && eos < static_cast<int64_t>(def.tokens.size()),
                  "GGUF file %s: tokenizer.ggml.eos_token_id %lld is not a token id", path.c_str(),
                  static_cast<long long>(eos));
    def.eod_token = static_cast<int32_t>(eos);
  }
  return make_hf_bpe_tokenizer(std::move(def));
}

}  // namespace rw
