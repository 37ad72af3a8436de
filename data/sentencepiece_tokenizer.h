// A SentencePiece model (Debian libsentencepiece) behind the Tokenizer interface. Built in when CMake
// found the library (RINGWISE_HAVE_SENTENCEPIECE); otherwise opening one is a UserError saying so.
#pragma once
#include <memory>
#include <string>

#include "data/tokenizer.h"

namespace rw {

// Its end-of-document token is the model's </s> (eos) piece; a model without one gets an extra id
// after its pieces. UserError naming the file when it cannot be loaded.
std::unique_ptr<Tokenizer> open_sentencepiece_tokenizer(const std::string& model_file);

}  // namespace rw
