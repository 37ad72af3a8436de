// What every byte-level BPE tokenizer does to one piece of text: apply its merges by rank, and
// remember the result for pieces that repeat. Shared by ringwise's own BPE (data/bpe_tokenizer.h)
// and the Hugging Face one (data/hf_bpe_tokenizer.h), which differ only in how ids are numbered.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rw {

class BpeMergeTable {
 public:
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
  }
  // The next merge: (left, right) becomes `merged`. Ranks follow the order of adding; a pair added
  // twice keeps its first rank.
  void add(int32_t left, int32_t right, int32_t merged) {
    table_.emplace(pair_key(left, right), Merge{static_cast<int32_t>(table_.size()), merged});
  }
  // Repeatedly merges the adjacent pair of lowest rank, the leftmost occurrence first, until no pair
  // has a merge: Hugging Face's order. O(n log n) in the symbols, so that a long piece (a paragraph
  // of Chinese is one \p{L}+ run) costs no more than its length.
  void apply(std::vector<int32_t>& symbols) const;

 private:
  struct Merge {
    int32_t rank, merged;
  };
  std::unordered_map<uint64_t, Merge> table_;
};

// Encodings of pieces seen before (words repeat). Safe to use from several threads; bounded, so that
// a corpus of endless distinct pieces does not grow it without limit.
class BpePieceCache {
 public:
  template <typename EncodePiece>
  void append(std::string_view piece, std::vector<int32_t>& out, EncodePiece encode_piece) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = cache_.find(std::string(piece));
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> ids = encode_piece(piece);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(mutex_);
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_.emplace(std::string(piece), std::move(ids));
  }

 private:
  static constexpr size_t kMaxCached = 1 << 20;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace rw
