// Byte-level BPE: ids 0..255 are the bytes, 256 is the end-of-document token and 257 + i is merge
// i, the concatenation of an earlier pair. Any byte string round-trips exactly.
//
// Text is first cut into pieces, and merges never cross a piece boundary: a piece starts at every
// whitespace byte (so " word" and "\n" are pieces) and is cut every kMaxPieceBytes bytes. Encoding
// therefore gives the same ids whether a text is encoded whole or in parts cut before a whitespace
// byte, which lets `ringwise prepare` stream documents of any size.
//
// File format (JSON, written by save(), read by load_bpe_tokenizer()):
//   {"kind": "ringwise-bpe", "format_version": 1, "vocab_size": N, "eod_token": 256,
//    "merges": [[left, right], ...]}       // N = 257 + number of merges
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/bpe_merges.h"
#include "data/tokenizer.h"

namespace rw {

class BpeTokenizer : public Tokenizer {
 public:
  static constexpr int kEod = 256;
  static constexpr int kFirstMerge = 257;
  static constexpr size_t kMaxPieceBytes = 64;

  // Learns up to vocab_size - 257 merges from the text of `inputs` (files, or directories of them as
  // `--data` reads them): repeatedly the most frequent adjacent pair within pieces, ties going to
  // the smallest (left, right) ids, so the result is deterministic. Stops early when no pair is left.
  static std::unique_ptr<BpeTokenizer> train(const std::vector<std::string>& inputs, int vocab_size);
  static std::unique_ptr<BpeTokenizer> train_from_text(const std::string& text, int vocab_size);

  BpeTokenizer(std::vector<std::pair<int32_t, int32_t>> merges, std::string file);
  // Writes the JSON file above; UserError naming the file when it cannot be written.
  void save(const std::string& path) const;

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int vocab_size() const override { return kFirstMerge + static_cast<int>(merges_.size()); }
  int eod_token() const override { return kEod; }
  std::string name() const override { return "bpe:" + file_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

 private:
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::string file_;
  BpeMergeTable merge_table_;
  std::vector<std::string> bytes_of_;  // id -> the bytes it stands for
  BpePieceCache cache_;                // encode() may be called from several threads
};

// Reads a file written by BpeTokenizer::save(); UserError naming the file and field when it is
// missing or malformed.
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& path);

}  // namespace rw
