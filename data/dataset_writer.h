// `ringwise prepare`: text in, an HDF5 token dataset out (format version 1, see
// data/hdf5_tokens.h). Streams: inputs are read in blocks and documents are encoded and appended as
// they go, so memory stays bounded however large the corpus is.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rw {

enum class InputFormat { kAuto, kText, kJsonl };  // auto: *.jsonl files are JSONL, the rest text

struct PrepareOptions {
  std::vector<std::string> inputs;  // files, or directories of them (regular files in name order)
  std::string output;
  std::string tokenizer = "byte";   // spec for open_tokenizer()
  double val_fraction = 0.01;       // the last documents holding about this share of the tokens
  InputFormat format = InputFormat::kAuto;
  std::string text_field = "text";  // JSONL: the field holding a document's text
  bool split_blank_lines = false;   // text: a blank line ends a document (else one per file)
  int compress = 0;                 // deflate level 0-9 for /tokens
  bool force = false;               // overwrite an existing output
};

struct PrepareStats {
  int64_t bytes_read = 0, total_bytes = 0;  // input text read so far / all inputs' sizes
  int64_t tokens = 0, docs = 0;
  int64_t train_tokens = 0;                 // set when done
  double seconds = 0;
};

// Writes `opts.output` through a temporary file renamed at the end: an error leaves no output and
// never touches an existing file. on_progress is called every few MB. UserError naming the file
// (and line, for JSONL) for bad inputs or options.
PrepareStats prepare_dataset(const PrepareOptions& opts, const std::function<void(const PrepareStats&)>& on_progress);

}  // namespace rw
