#include "data/dataset_writer.h"

#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "data/hdf5_file.h"
#include "data/token_source.h"
#include "data/tokenizer.h"
#include "data/unicode_class.h"

namespace rw {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kReadBlock = 1 << 20;      // bytes read from an input at a time
constexpr int64_t kEncodeBlock = 1 << 20;    // text held before a document's prefix is encoded
constexpr int64_t kTokenChunk = 1 << 20;     // elements per HDF5 chunk of /tokens (the reader's block)
constexpr int64_t kOffsetChunk = 1 << 16;    // of /doc_offsets: 512 KiB, small corpora have few documents
constexpr int64_t kProgressEvery = 4 << 20;  // input bytes between progress callbacks

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Appends tokens and document boundaries to the file, buffering one chunk. /tokens is uint16 when
// the vocabulary fits, else uint32.
class TokenWriter {
 public:
  TokenWriter(h5::File& file, int vocab_size, int compress) : offsets_(file, "/doc_offsets", kOffsetChunk) {
    if (vocab_size <= 65536) {
      narrow_ = std::make_unique<h5::Appender<uint16_t>>(file, "/tokens", kTokenChunk, compress);
    } else {
      wide_ = std::make_unique<h5::Appender<uint32_t>>(file, "/tokens", kTokenChunk, compress);
    }
    offset_buffer_.push_back(0);
  }
  void add(const std::vector<int32_t>& ids) {
    for (int32_t id : ids) {
      buffer_.push_back(static_cast<uint32_t>(id));
      if (static_cast<int64_t>(buffer_.size()) == kTokenChunk) flush_tokens();
    }
    tokens_ += static_cast<int64_t>(ids.size());
  }
  void end_document() {
    offset_buffer_.push_back(tokens_);
    ++docs_;
    if (static_cast<int64_t>(offset_buffer_.size()) == kOffsetChunk) flush_offsets();
  }
  void finish() {
    flush_tokens();
    flush_offsets();
  }
  int64_t tokens() const { return tokens_; }
  int64_t docs() const { return docs_; }

 private:
  void flush_tokens() {
    if (narrow_) {
      std::vector<uint16_t> small(buffer_.begin(), buffer_.end());
      narrow_->append(small.data(), static_cast<int64_t>(small.size()));
    } else {
      wide_->append(buffer_.data(), static_cast<int64_t>(buffer_.size()));
    }
    buffer_.clear();
  }
  void flush_offsets() {
    offsets_.append(offset_buffer_.data(), static_cast<int64_t>(offset_buffer_.size()));
    offset_buffer_.clear();
  }

  std::unique_ptr<h5::Appender<uint16_t>> narrow_;
  std::unique_ptr<h5::Appender<uint32_t>> wide_;
  h5::Appender<int64_t> offsets_;
  std::vector<uint32_t> buffer_;
  std::vector<int64_t> offset_buffer_;
  int64_t tokens_ = 0, docs_ = 0;
};

// Where a long document's text may be cut so that its parts encode to exactly the ids of the whole:
// before a plain space that follows a character other than whitespace. Every tokenizer ends a piece
// there: ringwise's BPE starts one at each whitespace byte, and the GPT-2 and LLaMA-3 split patterns
// of Hugging Face BPE end a run of letters, digits or punctuation at a space (a cut inside a run of
// whitespace, or before a line break, is not safe for them: runs join, and LLaMA-3 keeps "\n" with
// the punctuation before it). Failing that, before the last whitespace byte; failing that, before
// the last UTF-8 character, so that at least no character is split; failing that, all of it.
size_t encode_cut(const std::string& text) {
  const auto continuation = [&](size_t i) { return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
  for (size_t i = text.size(); i-- > 1;) {
    if (text[i] != ' ' || is_space(text[i - 1])) continue;
    size_t lead = i - 1;  // the character before the space, which may be a multi-byte one such as U+3000
    while (lead > 0 && i - lead < 4 && continuation(lead)) --lead;
    if (code_point_at(text, lead).cls != CharClass::kSpace) return i;
  }
  for (size_t i = text.size(); i-- > 1;)
    if (is_space(text[i])) return i;
  size_t cut = text.size() - 1;
  while (cut > 0 && continuation(cut)) --cut;
  return cut > 0 ? cut : text.size();
}

// Builds documents from text arriving in pieces. A long document is encoded in parts cut where
// encode_cut() says (SentencePiece may still differ slightly at such a cut). Empty documents are
// dropped.
class DocumentBuilder {
 public:
  DocumentBuilder(const Tokenizer& tok, TokenWriter& out) : tok_(tok), out_(out) {}
  void append(std::string_view text) {
    pending_.append(text.data(), text.size());
    has_text_ = has_text_ || !text.empty();
    if (static_cast<int64_t>(pending_.size()) < kEncodeBlock) return;
    const size_t cut = encode_cut(pending_);
    out_.add(tok_.encode(std::string_view(pending_).substr(0, cut)));
    pending_.erase(0, cut);
  }
  void end_document() {
    if (!has_text_) return;
    out_.add(tok_.encode(pending_));
    out_.add({tok_.eod_token()});
    out_.end_document();
    pending_.clear();
    has_text_ = false;
  }

 private:
  const Tokenizer& tok_;
  TokenWriter& out_;
  std::string pending_;
  bool has_text_ = false;
};

// Turns input files into documents: a whole file, blank-line separated blocks, or JSONL lines.
// on_bytes(n) reports input bytes as they are consumed.
class InputReader {
 public:
  InputReader(const PrepareOptions& opts, DocumentBuilder& docs, std::function<void(int64_t)> on_bytes)
      : opts_(opts), docs_(docs), on_bytes_(std::move(on_bytes)) {}

  void read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    RW_USER_CHECK(in.good(), "cannot read input %s: %s", path.c_str(), std::strerror(errno));
    const bool jsonl = opts_.format == InputFormat::kJsonl ||
                       (opts_.format == InputFormat::kAuto && fs::path(path).extension() == ".jsonl");
    if (jsonl) {
      read_jsonl(in, path);
    } else if (opts_.split_blank_lines) {
      read_paragraphs(in);
    } else {
      read_whole(in);
    }
    RW_USER_CHECK(in.eof(), "error reading input %s: %s", path.c_str(), std::strerror(errno));
  }

 private:
  void read_whole(std::ifstream& in) {
    std::vector<char> block(kReadBlock);
    while (in) {
      in.read(block.data(), kReadBlock);
      docs_.append(std::string_view(block.data(), static_cast<size_t>(in.gcount())));
      on_bytes_(in.gcount());
    }
    docs_.end_document();
  }

  // A line holding only whitespace ends a document; the document keeps its lines' newlines.
  void read_paragraphs(std::ifstream& in) {
    std::string line;
    while (std::getline(in, line)) {
      on_bytes_(static_cast<int64_t>(line.size()) + (in.eof() ? 0 : 1));
      if (is_blank(line)) {
        docs_.end_document();
      } else {
        if (!in.eof()) line += '\n';
        docs_.append(line);
      }
    }
    docs_.end_document();
  }

  void read_jsonl(std::ifstream& in, const std::string& path) {
    std::string line;
    for (long long number = 1; std::getline(in, line); ++number) {
      on_bytes_(static_cast<int64_t>(line.size()) + (in.eof() ? 0 : 1));
      if (is_blank(line)) continue;
      nlohmann::json doc;
      try {
        doc = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw UserError(format("%s:%lld: not valid JSON: %s", path.c_str(), number, e.what()));
      }
      RW_USER_CHECK(doc.is_object() && doc.contains(opts_.text_field) && doc[opts_.text_field].is_string(),
                    "%s:%lld: no string field \"%s\" (choose the field with --text-field)", path.c_str(), number,
                    opts_.text_field.c_str());
      docs_.append(doc[opts_.text_field].get_ref<const std::string&>());
      docs_.end_document();
    }
  }

  static bool is_blank(const std::string& line) {
    for (char c : line)
      if (!is_space(c)) return false;
    return true;
  }

  const PrepareOptions& opts_;
  DocumentBuilder& docs_;
  std::function<void(int64_t)> on_bytes_;
};

// The first document boundary at or after (1 - f) of the tokens, found by binary search over
// /doc_offsets on disk. A non-zero fraction with two or more documents always leaves at least the
// last document for validation.
int64_t choose_train_tokens(const h5::File& file, int64_t num_docs, int64_t num_tokens, double val_fraction) {
  if (val_fraction <= 0) return num_tokens;
  const int64_t target = static_cast<int64_t>(std::ceil((1.0 - val_fraction) * static_cast<double>(num_tokens)));
  auto offset = [&](int64_t i) {
    int64_t v = 0;
    file.read_range("/doc_offsets", i, 1, &v);
    return v;
  };
  int64_t lo = 0, hi = num_docs;  // offset(hi) = num_tokens >= target
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (offset(mid) >= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  if (lo == num_docs && num_docs >= 2) lo = num_docs - 1;
  return offset(lo);
}

std::string joined(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i > 0 ? separator : "") + items[i];
  return out;
}

// Removes the temporary file unless the dataset was completed and renamed.
struct TempFileGuard {
  std::string path;
  bool keep = false;
  ~TempFileGuard() {
    std::error_code ec;
    if (!keep) fs::remove(path, ec);
  }
};

}  // namespace

PrepareStats prepare_dataset(const PrepareOptions& opts, const std::function<void(const PrepareStats&)>& on_progress) {
  RW_USER_CHECK(!opts.inputs.empty(), "prepare needs at least one --input");
  RW_USER_CHECK(!opts.output.empty(), "prepare needs --output FILE.h5");
  RW_USER_CHECK(opts.val_fraction >= 0 && opts.val_fraction < 1, "--val-fraction must be in [0, 1), got %g",
                opts.val_fraction);
  RW_USER_CHECK(opts.compress >= 0 && opts.compress <= 9, "--compress must be a level from 0 to 9, got %d",
                opts.compress);
  std::error_code ec;
  RW_USER_CHECK(opts.force || !fs::exists(opts.output, ec), "output %s already exists (pass --force to replace it)",
                opts.output.c_str());
  RW_USER_CHECK(!fs::is_directory(opts.output, ec), "output %s is a directory", opts.output.c_str());
  std::vector<std::string> files;
  PrepareStats stats;
  for (const std::string& input : opts.inputs)
    for (const std::string& f : list_data_files(input)) {
      files.push_back(f);
      stats.total_bytes += static_cast<int64_t>(fs::file_size(f, ec));
    }
  std::unique_ptr<Tokenizer> tok = open_tokenizer(opts.tokenizer);

  const fs::path parent = fs::path(opts.output).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  TempFileGuard temp{opts.output + ".tmp"};
  h5::File file = h5::File::create(temp.path);
  const auto start = std::chrono::steady_clock::now();
  {
    TokenWriter writer(file, tok->vocab_size(), opts.compress);
    DocumentBuilder docs(*tok, writer);
    auto refresh = [&] {
      stats.tokens = writer.tokens();
      stats.docs = writer.docs();
      stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    int64_t since_progress = 0;
    InputReader reader(opts, docs, [&](int64_t n) {
      stats.bytes_read += n;
      since_progress += n;
      if (since_progress < kProgressEvery) return;
      since_progress = 0;
      refresh();
      if (on_progress) on_progress(stats);
    });
    for (const std::string& f : files) reader.read(f);
    writer.finish();
    refresh();
  }
  RW_USER_CHECK(stats.docs > 0, "the inputs hold no text: %s", joined(opts.inputs, ", ").c_str());
  stats.train_tokens = choose_train_tokens(file, stats.docs, stats.tokens, opts.val_fraction);

  file.set_attr("/", "ringwise_kind", std::string("dataset"));
  file.set_attr("/", "format_version", int64_t{1});
  file.set_attr("/", "tokenizer", tok->name());
  file.set_attr("/", "vocab_size", int64_t{tok->vocab_size()});
  file.set_attr("/", "eod_token", int64_t{tok->eod_token()});
  file.set_attr("/", "num_tokens", stats.tokens);
  file.set_attr("/", "num_docs", stats.docs);
  file.set_attr("/", "train_tokens", stats.train_tokens);
  file.set_attr("/", "sources", joined(opts.inputs, "\n") + "\n");
  file.flush();
  file.close();
  h5::fsync_path(temp.path);
  fs::rename(temp.path, opts.output, ec);
  RW_USER_CHECK(!ec, "cannot rename %s to %s: %s", temp.path.c_str(), opts.output.c_str(), ec.message().c_str());
  temp.keep = true;
  h5::fsync_path(parent.empty() ? "." : parent.string());
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace rw
