// Byte-level tokens from plain text: each byte is one token, vocab 256. A directory is read as the
// concatenation of its regular files in name order (skipping the fortune(6) index files *.dat),
// which is how the built-in default corpus, /usr/share/games/fortunes, is read.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/check.h"
#include "data/token_source.h"

namespace rw {
namespace {

class ByteTokens : public TokenSource {
 public:
  ByteTokens(std::string bytes, std::string name) : bytes_(std::move(bytes)), name_(std::move(name)) {}
  int64_t size() const override { return static_cast<int64_t>(bytes_.size()); }
  int vocab_size() const override { return 256; }
  void read(int64_t offset, int64_t n, int32_t* out) const override {
    RW_CHECK(offset >= 0 && offset + n <= size(), "read [%lld, %lld) outside %lld tokens",
             static_cast<long long>(offset), static_cast<long long>(offset + n), static_cast<long long>(size()));
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes_.data()) + offset;
    for (int64_t i = 0; i < n; ++i) out[i] = p[i];
  }
  std::string describe() const override {
    return "byte tokens from " + name_ + " (" + std::to_string(bytes_.size()) + " tokens)";
  }

 private:
  std::string bytes_;
  std::string name_;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  RW_USER_CHECK(in.good(), "cannot read data file %s: %s", path.c_str(), std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

std::vector<std::string> list_data_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  RW_USER_CHECK(fs::exists(st), "data path %s does not exist", path.c_str());
  if (!fs::is_directory(st)) return {path};
  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(path))
    if (e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::unique_ptr<TokenSource> open_text_tokens(const std::string& path) {
  std::string text;
  for (const std::string& f : list_data_files(path)) text += read_file(f);
  return text_tokens_from_string(std::move(text), path);
}

std::unique_ptr<TokenSource> text_tokens_from_string(std::string text, std::string name) {
  RW_USER_CHECK(text.size() >= 2, "data %s holds %zu bytes; training needs more text than that", name.c_str(),
                text.size());
  return std::make_unique<ByteTokens>(std::move(text), std::move(name));
}

}  // namespace rw
