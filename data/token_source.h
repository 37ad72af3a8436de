// Where training tokens come from. The byte-level text file is the first source; the HDF5 token
// dataset implements the same interface, so the loader and trainer do not change.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rw {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual int64_t size() const = 0;  // number of tokens
  virtual int vocab_size() const = 0;
  // Copies tokens [offset, offset + n) into out.
  virtual void read(int64_t offset, int64_t n, int32_t* out) const = 0;
  virtual std::string describe() const = 0;  // for logs: "byte tokens from FILE (N tokens)"
};

// Reads a whole text file as byte tokens (vocab 256). UserError naming the file when it is
// missing, unreadable or too short.
std::unique_ptr<TokenSource> open_text_tokens(const std::string& path);
// The files a data path stands for: the file itself, or a directory's regular files in name order
// without the fortune(6) index files *.dat. UserError when the path does not exist.
std::vector<std::string> list_data_files(const std::string& path);
// Bytes already in memory (tests, the built-in corpus).
std::unique_ptr<TokenSource> text_tokens_from_string(std::string text, std::string name);

}  // namespace rw
