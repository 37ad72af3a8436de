// The zigzag layout of context parallelism: the global sequence of T tokens is cut into 2P equal
// chunks and cp rank r holds chunks r and 2P-1-r, in that order. Under a causal mask an early
// chunk sees few keys and a late one many, so pairing them gives every rank the same attention
// work (DESIGN.md "Ring attention").
//
// Tensors are [B, T, row...] with `row` elements per token; a rank's local part is [B, T/P, row...].
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rw {

// Throws UserError naming --seq-len and --cp unless 2 * cp divides seq_len.
void check_zigzag(int seq_len, int cp);

// The global chunk indices (out of 2P) that rank r holds, in local order.
std::array<int, 2> zigzag_chunks(int P, int r);

// Global position of each of rank r's T/P local tokens (RoPE's pos array).
std::vector<int32_t> zigzag_positions(int T, int P, int r);

// local[b, :, :] = rank r's tokens of full[b, :, :].
template <typename E>
void zigzag_scatter(E* local, const E* full, int B, int T, size_t row, int P, int r) {
  const size_t chunk = static_cast<size_t>(T) / (2 * P) * row;
  const std::array<int, 2> ids = zigzag_chunks(P, r);
  for (size_t b = 0; b < static_cast<size_t>(B); ++b)
    for (int i = 0; i < 2; ++i)
      std::memcpy(local + (b * 2 + i) * chunk, full + (b * 2 * P + ids[i]) * chunk, chunk * sizeof(E));
}

// The inverse: writes rank r's local part into its places in full (the rest of full is untouched,
// so calling it for every rank assembles the whole sequence).
template <typename E>
void zigzag_gather(E* full, const E* local, int B, int T, size_t row, int P, int r) {
  const size_t chunk = static_cast<size_t>(T) / (2 * P) * row;
  const std::array<int, 2> ids = zigzag_chunks(P, r);
  for (size_t b = 0; b < static_cast<size_t>(B); ++b)
    for (int i = 0; i < 2; ++i)
      std::memcpy(full + (b * 2 * P + ids[i]) * chunk, local + (b * 2 + i) * chunk, chunk * sizeof(E));
}

}  // namespace rw
