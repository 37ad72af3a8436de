#include "data/bpe_merges.h"

#include <functional>
#include <queue>

namespace rw {

void BpeMergeTable::apply(std::vector<int32_t>& sym) const {
  const int n = static_cast<int>(sym.size());
  if (n < 2) return;
  // The symbols as a linked list (merging keeps the left position and unlinks the right one), and
  // a min-heap of candidate merges by (rank, position) whose stale entries are skipped when popped.
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int position;
    int32_t left, right, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : position > o.position; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  const auto consider = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    auto it = table_.find(pair_key(sym[i], sym[next[i]]));
    if (it != table_.end()) heap.push({it->second.rank, i, sym[i], sym[next[i]], it->second.merged});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int i = c.position, j = next[i];
    if (!alive[i] || j < 0 || sym[i] != c.left || sym[j] != c.right) continue;  // stale
    sym[i] = c.merged;
    alive[j] = false;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    consider(prev[i]);
    consider(i);
  }
  int out = 0;
  for (int i = 0; i >= 0; i = next[i]) sym[out++] = sym[i];
  sym.resize(out);
}

}  // namespace rw
