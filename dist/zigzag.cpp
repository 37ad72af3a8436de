#include "dist/zigzag.h"

#include "core/check.h"

namespace rw {

void check_zigzag(int seq_len, int cp) {
  RW_USER_CHECK(cp >= 1, "--cp must be at least 1, got %d", cp);
  RW_USER_CHECK(seq_len > 0 && seq_len % (2 * cp) == 0,
                "--seq-len %d must be divisible by 2 * --cp = %d (the zigzag layout cuts the sequence into 2 "
                "chunks per context-parallel rank)",
                seq_len, 2 * cp);
}

std::array<int, 2> zigzag_chunks(int P, int r) { return {r, 2 * P - 1 - r}; }

std::vector<int32_t> zigzag_positions(int T, int P, int r) {
  const int chunk = T / (2 * P);
  std::vector<int32_t> pos;
  pos.reserve(2 * chunk);
  for (int id : zigzag_chunks(P, r))
    for (int i = 0; i < chunk; ++i) pos.push_back(id * chunk + i);
  return pos;
}

}  // namespace rw
