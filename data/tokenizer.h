// Text to token ids and back. Every tokenizer reserves one end-of-document token, which
// `ringwise prepare` appends after each document; decode() drops it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rw {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int vocab_size() const = 0;  // ids are in [0, vocab_size), the end-of-document token included
  virtual int eod_token() const = 0;
  // The spec that reopens it, as stored in a dataset's `tokenizer` attribute: "byte", "bpe:FILE", ...
  virtual std::string name() const = 0;
};

// Bytes 0..255 are tokens 0..255; the end-of-document token is 256 (vocab 257).
std::unique_ptr<Tokenizer> make_byte_tokenizer();

// "byte", "bpe:FILE", "sentencepiece:FILE", "hf:tokenizer.json" or "gguf:FILE.gguf" (a Hugging Face
// byte-level BPE, data/hf_bpe_tokenizer.h). UserError for an unknown spec or a file that cannot be
// read, naming it.
std::unique_ptr<Tokenizer> open_tokenizer(const std::string& spec);

// What --tokenizer takes, for the help of every command that has one.
inline constexpr const char* kTokenizerSpecHelp = "byte or bpe|sentencepiece|hf|gguf:FILE (default byte)";

}  // namespace rw
