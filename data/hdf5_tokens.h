// HDF5 token datasets written by `ringwise prepare` (format version 1):
//   /tokens       1-D uint16 (vocab_size <= 65536) or uint32, chunked, optionally deflated
//   /doc_offsets  1-D int64, num_docs + 1 entries; document i is tokens[doc_offsets[i] :
//                 doc_offsets[i+1]] and ends with the end-of-document token
//   root attributes: ringwise_kind = "dataset", format_version = 1, tokenizer ("byte", "bpe:FILE",
//   "sentencepiece:FILE"), vocab_size, eod_token, num_tokens, num_docs, train_tokens (tokens
//   [0, train_tokens) are the training split, the rest validation; a document boundary), sources
//   (input paths, one per line).
#pragma once
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "data/token_source.h"

namespace rw {

enum class TokenSplit { kTrain, kVal };

struct TokenDatasetInfo {
  std::string tokenizer;
  int64_t vocab_size = 0, eod_token = 0, num_tokens = 0, num_docs = 0, train_tokens = 0;
  std::string sources;
  std::string dtype;        // of /tokens: "uint16" or "uint32"
  std::string compression;  // of /tokens: "none" or "deflate level N"
};

// Whether `path` is a regular file starting with the HDF5 signature (the extension does not matter).
bool is_hdf5_file(const std::string& path);

// Reads and checks the attributes and the shapes and types of both datasets (not their contents);
// UserError naming the file and the field that is wrong.
TokenDatasetInfo read_token_dataset_info(const std::string& path);

// One split of a dataset as a TokenSource. A split of at most cache_tokens tokens (default 64M,
// 256 MiB in memory) is kept in memory as its 1M-token blocks are first read, so random training
// windows then cost a copy; a larger one is read window by window. Safe to read from several
// threads (HDF5 calls are serialized). UserError when the file is not a valid dataset or the split
// is empty.
std::unique_ptr<TokenSource> open_token_dataset(const std::string& path, TokenSplit split,
                                                int64_t cache_tokens = int64_t{64} << 20);

// Prints a summary (tokenizer, vocabulary, tokens, documents, split sizes, dtype, compression,
// sources, the first tokens decoded for byte-level data), then verifies the whole file: every chunk
// is read, every token is below vocab_size, doc_offsets rise from 0 to num_tokens and each document
// ends with the end-of-document token. UserError naming the file and field on damage.
void inspect_token_dataset(const std::string& path, std::ostream& out);

}  // namespace rw
