#include "models/param_table.h"

#include "core/check.h"

namespace rw {

// Every tensor starts on a 16-float (64-byte) boundary so kernels see aligned rows.
static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

void ParamTable::add(const std::string& name, Shape shape, bool decay) {
  RW_CHECK(find(name) == nullptr, "parameter %s registered twice", name.c_str());
  ParamInfo p{name, std::move(shape), total_, decay};
  total_ = align16(total_ + p.numel());
  entries_.push_back(std::move(p));
}

const ParamInfo* ParamTable::find(const std::string& name) const {
  for (const ParamInfo& p : entries_)
    if (p.name == name) return &p;
  return nullptr;
}

const ParamInfo& ParamTable::at(const std::string& name) const {
  const ParamInfo* p = find(name);
  RW_CHECK(p != nullptr, "no parameter named %s", name.c_str());
  return *p;
}

}  // namespace rw
