#include "data/hdf5_tokens.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#include "core/check.h"
#include "data/hdf5_file.h"

namespace rw {
namespace {

constexpr int64_t kBlock = 1 << 20;         // tokens per cached block, the writer's chunk size
constexpr int64_t kVerifyBlock = 1 << 20;   // elements read at a time by inspect

// The HDF5 library Debian ships is not thread-safe; every HDF5 call made here holds this lock.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

int64_t attr_at_least(const h5::File& f, const char* key, int64_t min) {
  int64_t v = f.attr_int("/", key);
  RW_USER_CHECK(v >= min, "%s: attribute '%s' is %lld, expected at least %lld", f.path().c_str(), key,
                static_cast<long long>(v), static_cast<long long>(min));
  return v;
}

TokenDatasetInfo read_info(const h5::File& f) {
  const std::string& path = f.path();
  RW_USER_CHECK(f.has_attr("/", "ringwise_kind"), "%s is not a ringwise file: it has no attribute 'ringwise_kind'",
                path.c_str());
  const std::string kind = f.attr_string("/", "ringwise_kind");
  RW_USER_CHECK(kind == "dataset", "%s: attribute 'ringwise_kind' is '%s', expected 'dataset'", path.c_str(),
                kind.c_str());
  const int64_t version = f.attr_int("/", "format_version");
  RW_USER_CHECK(version == 1, "%s: attribute 'format_version' is %lld; this ringwise reads version 1", path.c_str(),
                static_cast<long long>(version));
  TokenDatasetInfo info;
  info.tokenizer = f.attr_string("/", "tokenizer");
  info.sources = f.attr_string("/", "sources");
  info.vocab_size = attr_at_least(f, "vocab_size", 1);
  info.eod_token = attr_at_least(f, "eod_token", 0);
  info.num_tokens = attr_at_least(f, "num_tokens", 0);
  info.num_docs = attr_at_least(f, "num_docs", 0);
  info.train_tokens = attr_at_least(f, "train_tokens", 0);
  RW_USER_CHECK(info.vocab_size <= (int64_t{1} << 31) - 1, "%s: attribute 'vocab_size' %lld is too large",
                path.c_str(), static_cast<long long>(info.vocab_size));
  RW_USER_CHECK(info.eod_token < info.vocab_size, "%s: attribute 'eod_token' %lld is not below vocab_size %lld",
                path.c_str(), static_cast<long long>(info.eod_token), static_cast<long long>(info.vocab_size));
  RW_USER_CHECK(info.train_tokens <= info.num_tokens, "%s: attribute 'train_tokens' %lld exceeds num_tokens %lld",
                path.c_str(), static_cast<long long>(info.train_tokens), static_cast<long long>(info.num_tokens));

  const h5::DatasetInfo tokens = f.info("/tokens");
  const size_t want_size = info.vocab_size <= 65536 ? 2 : 4;
  RW_USER_CHECK(!tokens.is_float && !tokens.is_signed && tokens.element_size == want_size,
                "%s: dataset '/tokens' holds %s, expected uint%zu for vocab_size %lld", path.c_str(),
                tokens.type_name().c_str(), 8 * want_size, static_cast<long long>(info.vocab_size));
  RW_USER_CHECK(tokens.shape == Shape{info.num_tokens},
                "%s: dataset '/tokens' has shape %s, expected [%lld] (num_tokens)",
                path.c_str(), shape_str(tokens.shape).c_str(), static_cast<long long>(info.num_tokens));
  const h5::DatasetInfo offsets = f.info("/doc_offsets");
  RW_USER_CHECK(!offsets.is_float && offsets.is_signed && offsets.element_size == 8,
                "%s: dataset '/doc_offsets' holds %s, expected int64", path.c_str(), offsets.type_name().c_str());
  RW_USER_CHECK(offsets.shape == Shape{info.num_docs + 1},
                "%s: dataset '/doc_offsets' has shape %s, expected [%lld] (num_docs + 1)", path.c_str(),
                shape_str(offsets.shape).c_str(), static_cast<long long>(info.num_docs + 1));
  int64_t first = 0, last = 0;
  f.read_range("/doc_offsets", 0, 1, &first);
  f.read_range("/doc_offsets", info.num_docs, 1, &last);
  RW_USER_CHECK(first == 0 && last == info.num_tokens,
                "%s: dataset '/doc_offsets' runs from %lld to %lld, expected 0 to num_tokens %lld", path.c_str(),
                static_cast<long long>(first), static_cast<long long>(last), static_cast<long long>(info.num_tokens));
  info.dtype = tokens.type_name();
  info.compression = tokens.compression;
  return info;
}

class Hdf5Tokens : public TokenSource {
 public:
  Hdf5Tokens(h5::File file, const TokenDatasetInfo& info, TokenSplit split, int64_t cache_tokens)
      : file_(std::move(file)),
        begin_(split == TokenSplit::kTrain ? 0 : info.train_tokens),
        size_(split == TokenSplit::kTrain ? info.train_tokens : info.num_tokens - info.train_tokens),
        total_(info.num_tokens),
        vocab_(static_cast<int>(info.vocab_size)),
        label_(format("HDF5 tokens from %s (%s split, %lld tokens, tokenizer %s)", file_.path().c_str(),
                      split == TokenSplit::kTrain ? "train" : "val", static_cast<long long>(size_),
                      info.tokenizer.c_str())) {
    if (size_ <= cache_tokens) blocks_.resize(static_cast<size_t>((total_ + kBlock - 1) / kBlock));
  }

  int64_t size() const override { return size_; }
  int vocab_size() const override { return vocab_; }
  std::string describe() const override { return label_; }

  void read(int64_t offset, int64_t n, int32_t* out) const override {
    RW_CHECK(offset >= 0 && n >= 0 && offset + n <= size_, "read [%lld, %lld) outside %lld tokens",
             static_cast<long long>(offset), static_cast<long long>(offset + n), static_cast<long long>(size_));
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    int64_t pos = begin_ + offset;
    if (blocks_.empty()) {
      file_.read_range("/tokens", pos, n, out);
      return;
    }
    const int64_t end = pos + n;
    while (pos < end) {
      const std::vector<int32_t>& block = cached_block(pos / kBlock);
      const int64_t within = pos % kBlock;
      const int64_t take = std::min<int64_t>(end - pos, static_cast<int64_t>(block.size()) - within);
      std::memcpy(out, block.data() + within, static_cast<size_t>(take) * sizeof(int32_t));
      out += take;
      pos += take;
    }
  }

 private:
  // Read on first use and kept. Called with the lock held.
  const std::vector<int32_t>& cached_block(int64_t index) const {
    std::vector<int32_t>& block = blocks_[static_cast<size_t>(index)];
    if (block.empty()) {
      const int64_t start = index * kBlock;
      block.resize(static_cast<size_t>(std::min(kBlock, total_ - start)));
      file_.read_range("/tokens", start, static_cast<int64_t>(block.size()), block.data());
    }
    return block;
  }

  h5::File file_;
  int64_t begin_, size_, total_;
  int vocab_;
  std::string label_;
  mutable std::vector<std::vector<int32_t>> blocks_;  // by block of the file; empty when not caching
};

// Printable text: control bytes and quotes escaped, so a summary stays on its lines.
std::string escaped(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += format("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Reads all of /tokens and /doc_offsets block by block, checking the contents read_info() cannot.
void verify_contents(const h5::File& f, const TokenDatasetInfo& info) {
  const std::string& path = f.path();
  std::vector<int64_t> offsets;
  int64_t offsets_read = 0;   // doc_offsets entries consumed so far
  int64_t previous = 0;
  // The next document end from doc_offsets, reading another block when the last is used up.
  auto next_end = [&]() -> int64_t {
    if (offsets_read % kVerifyBlock == 0) {
      const int64_t n = std::min(kVerifyBlock, info.num_docs - offsets_read);
      offsets.resize(static_cast<size_t>(n));
      f.read_range("/doc_offsets", 1 + offsets_read, n, offsets.data());
    }
    const int64_t end = offsets[static_cast<size_t>(offsets_read % kVerifyBlock)];
    ++offsets_read;
    RW_USER_CHECK(end > previous, "%s: dataset '/doc_offsets' is not increasing at document %lld (%lld after %lld)",
                  path.c_str(), static_cast<long long>(offsets_read - 1), static_cast<long long>(end),
                  static_cast<long long>(previous));
    previous = end;
    return end;
  };
  int64_t doc_end = info.num_docs > 0 ? next_end() : -1;
  std::vector<int64_t> tokens;
  for (int64_t start = 0; start < info.num_tokens; start += kVerifyBlock) {
    const int64_t n = std::min(kVerifyBlock, info.num_tokens - start);
    tokens.resize(static_cast<size_t>(n));
    f.read_range("/tokens", start, n, tokens.data());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = start + i, t = tokens[static_cast<size_t>(i)];
      RW_USER_CHECK(t < info.vocab_size, "%s: dataset '/tokens' holds %lld at position %lld, not below vocab_size %lld",
                    path.c_str(), static_cast<long long>(t), static_cast<long long>(pos),
                    static_cast<long long>(info.vocab_size));
      const bool is_end = pos + 1 == doc_end;
      RW_USER_CHECK((t == info.eod_token) == is_end,
                    "%s: dataset '/tokens' %s the end-of-document token %lld at position %lld, where doc_offsets %s",
                    path.c_str(), is_end ? "lacks" : "holds", static_cast<long long>(info.eod_token),
                    static_cast<long long>(pos), is_end ? "ends a document" : "ends none");
      if (is_end && offsets_read < info.num_docs) doc_end = next_end();
    }
  }
  RW_USER_CHECK(offsets_read == info.num_docs, "%s: dataset '/doc_offsets' lists %lld documents, /tokens ends %lld",
                path.c_str(), static_cast<long long>(info.num_docs), static_cast<long long>(offsets_read));
}

}  // namespace

bool is_hdf5_file(const std::string& path) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, sizeof head) && std::memcmp(head, kSignature, sizeof head) == 0;
}

TokenDatasetInfo read_token_dataset_info(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return read_info(h5::File::open(path));
}

std::unique_ptr<TokenSource> open_token_dataset(const std::string& path, TokenSplit split, int64_t cache_tokens) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::File file = h5::File::open(path);
  const TokenDatasetInfo info = read_info(file);
  const bool train = split == TokenSplit::kTrain;
  RW_USER_CHECK(train ? info.train_tokens > 0 : info.train_tokens < info.num_tokens,
                "%s has an empty %s split (train_tokens %lld of num_tokens %lld)", path.c_str(),
                train ? "training" : "validation", static_cast<long long>(info.train_tokens),
                static_cast<long long>(info.num_tokens));
  return std::make_unique<Hdf5Tokens>(std::move(file), info, split, cache_tokens);
}

void inspect_token_dataset(const std::string& path, std::ostream& out) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  h5::File f = h5::File::open(path);
  const TokenDatasetInfo info = read_info(f);
  const double share = info.num_tokens > 0 ? 100.0 * info.train_tokens / info.num_tokens : 0;
  out << "ringwise token dataset " << path << " (format version 1)\n"
      << "  tokenizer    " << info.tokenizer << " (vocab " << info.vocab_size << ", end of document "
      << info.eod_token << ")\n"
      << "  tokens       " << info.num_tokens << " in " << info.num_docs << " documents, /tokens " << info.dtype
      << ", compression " << info.compression << "\n"
      << format("  split        train %lld tokens (%.2f%%), val %lld tokens\n",
                static_cast<long long>(info.train_tokens), share,
                static_cast<long long>(info.num_tokens - info.train_tokens));
  std::string sources = info.sources;
  if (!sources.empty() && sources.back() == '\n') sources.pop_back();
  size_t line_start = 0;
  for (bool first = true; line_start <= sources.size(); first = false) {
    size_t line_end = std::min(sources.find('\n', line_start), sources.size());
    out << (first ? "  sources      " : "               ") << sources.substr(line_start, line_end - line_start) << "\n";
    line_start = line_end + 1;
  }
  if (info.tokenizer == "byte" && info.num_tokens > 0) {
    const int64_t n = std::min<int64_t>(info.num_tokens, 80);
    std::vector<int32_t> head(static_cast<size_t>(n));
    f.read_range("/tokens", 0, n, head.data());
    std::string text;
    for (int32_t t : head) text += t < 256 ? std::string(1, static_cast<char>(t)) : "<eod>";
    out << "  begins       \"" << escaped(text) << "\"\n";
  }
  verify_contents(f, info);
  out << "  verified     every chunk read; tokens below vocab_size; documents end with token " << info.eod_token
      << "\n";
}

}  // namespace rw
