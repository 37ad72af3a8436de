// The one table of parameters: Hugging Face name, logical shape, offset in the flat buffer, and
// whether weight decay applies. Allocation, initialisation, the optimizer, gradient norms and
// checkpoint I/O all walk this table, so a new layer is one entry plus its forward/backward.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rw {

struct ParamInfo {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj.weight"
  Shape shape;       // logical, unsharded
  size_t offset;     // in floats, into the flat parameter (and gradient) buffer
  bool decay;        // matrices decay, norm weights do not
  size_t numel() const { return static_cast<size_t>(shape_numel(shape)); }
};

class ParamTable {
 public:
  void add(const std::string& name, Shape shape, bool decay);
  const std::vector<ParamInfo>& entries() const { return entries_; }
  size_t total() const { return total_; }
  // nullptr when absent.
  const ParamInfo* find(const std::string& name) const;
  // Throws (internal error) when absent: the model asks only for names it registered.
  const ParamInfo& at(const std::string& name) const;

 private:
  std::vector<ParamInfo> entries_;
  size_t total_ = 0;
};

}  // namespace rw
