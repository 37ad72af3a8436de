#include "data/tokenizer.h"

#include "core/check.h"
#include "data/bpe_tokenizer.h"
#include "data/hf_bpe_tokenizer.h"
#include "data/sentencepiece_tokenizer.h"

namespace rw {
namespace {

constexpr int kByteEod = 256;

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    text.reserve(ids.size());
    for (int32_t id : ids)
      if (id >= 0 && id < kByteEod) text += static_cast<char>(id);
    return text;
  }
  int vocab_size() const override { return kByteEod + 1; }
  int eod_token() const override { return kByteEod; }
  std::string name() const override { return "byte"; }
};

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& spec) {
  if (spec == "byte") return make_byte_tokenizer();
  const std::string bpe = "bpe:", sp = "sentencepiece:", hf = "hf:", gguf = "gguf:";
  if (starts_with(spec, bpe) && spec.size() > bpe.size()) return load_bpe_tokenizer(spec.substr(bpe.size()));
  if (starts_with(spec, sp) && spec.size() > sp.size()) return open_sentencepiece_tokenizer(spec.substr(sp.size()));
  if (starts_with(spec, hf) && spec.size() > hf.size()) return open_hf_tokenizer(spec.substr(hf.size()));
  if (starts_with(spec, gguf) && spec.size() > gguf.size()) return open_gguf_tokenizer(spec.substr(gguf.size()));
  throw UserError("unknown tokenizer '" + spec +
                  "' (expected byte, bpe:FILE, sentencepiece:FILE, hf:tokenizer.json or gguf:FILE.gguf)");
}

}  // namespace rw
