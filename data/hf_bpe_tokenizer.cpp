#include "data/hf_bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include "core/check.h"
#include "data/bpe_merges.h"
#include "data/unicode_class.h"

namespace rw {
namespace {

// GPT-2's alphabet gives every byte a printable character, so that tokens are readable strings:
// the printable Latin-1 bytes stand for themselves, the other 68 for U+0100 onwards, in byte order.
std::array<uint32_t, 256> byte_to_code_point() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    map[b] = printable ? b : next++;
  }
  return map;
}

std::string utf8(uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// A token's bytes: each character of the alphabet back to its byte. A character outside the alphabet
// stays as its own UTF-8 bytes, as the Hugging Face ByteLevel decoder leaves it.
std::string token_bytes(const std::string& token, const std::unordered_map<uint32_t, char>& byte_of) {
  std::string bytes;
  for (size_t i = 0; i < token.size();) {
    const CodePoint c = code_point_at(token, i);
    const bool valid = c.value < 0x80 || c.bytes > 1;  // an invalid byte comes back as a 1-byte code point >= 0x80
    auto it = valid ? byte_of.find(c.value) : byte_of.end();
    if (it != byte_of.end()) {
      bytes += it->second;
    } else {
      bytes.append(token, i, c.bytes);
    }
    i += c.bytes;
  }
  return bytes;
}

class HfBpeTokenizer : public Tokenizer {
 public:
  explicit HfBpeTokenizer(HfBpeDefinition def)
      : spec_(std::move(def.spec)),
        pretokenizer_(def.pretokenizer),
        ignore_merges_(def.ignore_merges),
        unk_(def.unk_token),
        fuse_unk_(def.fuse_unk) {
    const std::string& file = def.file;
    const int64_t n = static_cast<int64_t>(def.tokens.size());
    RW_USER_CHECK(n > 0 && n < (int64_t{1} << 31), "tokenizer %s: vocabulary of %lld tokens", file.c_str(),
                  static_cast<long long>(n));
    std::unordered_map<std::string, int32_t> id_of;
    for (int32_t id = 0; id < n; ++id)
      if (!def.tokens[id].empty()) id_of.emplace(def.tokens[id], id);

    const std::array<uint32_t, 256> alphabet = byte_to_code_point();
    std::unordered_map<uint32_t, char> byte_of;
    for (int b = 0; b < 256; ++b) {
      byte_of.emplace(alphabet[b], static_cast<char>(b));
      auto it = id_of.find(utf8(alphabet[b]));
      byte_token_[b] = it != id_of.end() ? it->second : -1;
    }
    for (size_t r = 0; r < def.merges.size(); ++r) {
      const auto& [left, right] = def.merges[r];
      auto a = id_of.find(left), b = id_of.find(right), ab = id_of.find(left + right);
      RW_USER_CHECK(a != id_of.end() && b != id_of.end() && ab != id_of.end(),
                    "tokenizer %s: merges[%zu] \"%s %s\" uses or makes a token the vocabulary does not have",
                    file.c_str(), r, left.c_str(), right.c_str());
      merges_.add(a->second, b->second, ab->second);
    }

    std::vector<bool> added(n, false);
    for (int32_t id : def.added_tokens) {
      RW_USER_CHECK(id >= 0 && id < n && !def.tokens[id].empty(), "tokenizer %s: added token id %d has no text",
                    file.c_str(), id);
      added[id] = true;
      added_by_first_byte_[static_cast<unsigned char>(def.tokens[id][0])].push_back({def.tokens[id], id});
    }
    for (auto& bucket : added_by_first_byte_)  // longest first: the longest match wins
      std::stable_sort(bucket.begin(), bucket.end(),
                       [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });

    bytes_of_.resize(n);
    for (int32_t id = 0; id < n; ++id) {
      bytes_of_[id] = added[id] ? def.tokens[id] : token_bytes(def.tokens[id], byte_of);
      if (ignore_merges_ && !added[id] && !def.tokens[id].empty()) id_of_bytes_.emplace(bytes_of_[id], id);
    }
    RW_USER_CHECK(unk_ >= -1 && unk_ < n, "tokenizer %s: unknown-token id %d is not in the vocabulary of %lld",
                  file.c_str(), unk_, static_cast<long long>(n));
    RW_USER_CHECK(def.eod_token >= -1 && def.eod_token < n,
                  "tokenizer %s: end-of-document id %d is not in the vocabulary of %lld", file.c_str(), def.eod_token,
                  static_cast<long long>(n));
    eod_ = def.eod_token >= 0 ? def.eod_token : static_cast<int32_t>(n);
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3);
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      const auto [length, id] = added_token_at(text, i);
      if (length == 0) continue;
      encode_plain(text.substr(start, i - start), ids);
      ids.push_back(id);
      start = i + length;
      i = start - 1;
    }
    encode_plain(text.substr(start), ids);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids)
      if (id != eod_ && id >= 0 && id < static_cast<int32_t>(bytes_of_.size())) text += bytes_of_[id];
    return text;
  }

  int vocab_size() const override { return std::max(static_cast<int>(bytes_of_.size()), eod_ + 1); }
  int eod_token() const override { return eod_; }
  std::string name() const override { return spec_; }

 private:
  // The longest added token at byte i: (its length, its id), or (0, -1).
  std::pair<size_t, int32_t> added_token_at(std::string_view text, size_t i) const {
    for (const auto& [content, id] : added_by_first_byte_[static_cast<unsigned char>(text[i])])
      if (text.compare(i, content.size(), content) == 0) return {content.size(), id};
    return {0, -1};
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
    pretokenize(text, pretokenizer_, [&](std::string_view piece) {
      cache_.append(piece, ids, [&](std::string_view p) { return encode_piece(p); });
    });
  }

  std::vector<int32_t> encode_piece(std::string_view piece) const {
    if (ignore_merges_) {
      auto it = id_of_bytes_.find(std::string(piece));
      if (it != id_of_bytes_.end()) return {it->second};
    }
    std::vector<int32_t> sym;
    sym.reserve(piece.size());
    bool after_unknown = false;
    for (char c : piece) {
      const int32_t id = byte_token_[static_cast<unsigned char>(c)];
      if (id < 0 && unk_ >= 0 && !(fuse_unk_ && after_unknown)) sym.push_back(unk_);
      if (id >= 0) sym.push_back(id);
      after_unknown = id < 0;
    }
    merges_.apply(sym);
    return sym;
  }

  std::string spec_;
  PretokenizerOptions pretokenizer_;
  bool ignore_merges_;
  int32_t unk_;
  bool fuse_unk_;
  std::array<int32_t, 256> byte_token_{};  // -1: the byte has no token
  BpeMergeTable merges_;
  std::array<std::vector<std::pair<std::string, int32_t>>, 256> added_by_first_byte_;
  std::vector<std::string> bytes_of_;                     // id -> the bytes it decodes to
  std::unordered_map<std::string, int32_t> id_of_bytes_;  // only with ignore_merges
  int32_t eod_ = 0;
  BpePieceCache cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_hf_bpe_tokenizer(HfBpeDefinition definition) {
  return std::make_unique<HfBpeTokenizer>(std::move(definition));
}

}  // namespace rw
