#include "data/sentencepiece_tokenizer.h"

#include "core/check.h"

#ifdef RINGWISE_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace rw {

#ifdef RINGWISE_HAVE_SENTENCEPIECE
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& model_file) : file_(model_file) {
    const auto status = sp_.Load(model_file);
    RW_USER_CHECK(status.ok(), "cannot load SentencePiece model %s: %s", model_file.c_str(), status.ToString().c_str());
    eod_ = sp_.eos_id() >= 0 ? sp_.eos_id() : sp_.GetPieceSize();
  }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int> ids;
    const auto status = sp_.Encode(text, &ids);
    if (!status.ok()) throw std::runtime_error("SentencePiece encode failed: " + status.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<int> pieces;
    for (int32_t id : ids)
      if (id != eod_ && id >= 0 && id < sp_.GetPieceSize()) pieces.push_back(id);
    std::string text;
    const auto status = sp_.Decode(pieces, &text);
    if (!status.ok()) throw std::runtime_error("SentencePiece decode failed: " + status.ToString());
    return text;
  }
  int vocab_size() const override { return std::max(sp_.GetPieceSize(), eod_ + 1); }
  int eod_token() const override { return eod_; }
  std::string name() const override { return "sentencepiece:" + file_; }

 private:
  std::string file_;
  sentencepiece::SentencePieceProcessor sp_;
  int eod_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> open_sentencepiece_tokenizer(const std::string& model_file) {
  return std::make_unique<SentencePieceTokenizer>(model_file);
}

#else

std::unique_ptr<Tokenizer> open_sentencepiece_tokenizer(const std::string& model_file) {
  throw UserError("cannot use SentencePiece model " + model_file +
                  ": this ringwise was built without SentencePiece (install libsentencepiece-dev and rebuild)");
}

#endif

}  // namespace rw
