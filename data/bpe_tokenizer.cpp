#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_set>

#include "core/check.h"
#include "data/token_source.h"

namespace rw {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return BpeMergeTable::pair_key(a, b); }

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

template <typename Visit>
void for_each_piece(std::string_view text, Visit visit) {
  size_t start = 0;
  for (size_t i = 1; i <= text.size(); ++i) {
    if (i == text.size() || is_space(text[i]) || i - start == BpeTokenizer::kMaxPieceBytes) {
      visit(text.substr(start, i - start));
      start = i;
    }
  }
}

// Piece frequencies of a corpus, read in blocks cut before a whitespace byte (pieces never span
// such a cut, so the counts equal those of the whole text).
class PieceCounter {
 public:
  void add(std::string_view text) {
    for_each_piece(text, [&](std::string_view p) { ++counts_[std::string(p)]; });
  }
  void add_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    RW_USER_CHECK(in.good(), "cannot read %s: %s", path.c_str(), std::strerror(errno));
    std::string carry;
    std::vector<char> block(1 << 20);
    while (in) {
      in.read(block.data(), block.size());
      carry.append(block.data(), static_cast<size_t>(in.gcount()));
      size_t cut = carry.size();
      while (cut > 0 && !is_space(carry[cut - 1])) --cut;
      if (cut > 0) --cut;  // cut before the whitespace byte
      if (cut == 0 && carry.size() < (4u << 20)) continue;
      if (cut == 0) cut = carry.size();
      add(std::string_view(carry).substr(0, cut));
      carry.erase(0, cut);
    }
    RW_USER_CHECK(in.eof(), "error reading %s", path.c_str());
    add(carry);
  }
  std::unordered_map<std::string, int64_t>& counts() { return counts_; }

 private:
  std::unordered_map<std::string, int64_t> counts_;
};

// The merge loop. Pair counts are kept for the whole corpus and updated only for the words a merge
// touches; a max-heap with lazy deletion finds the next pair.
std::vector<std::pair<int32_t, int32_t>> learn_merges(const std::unordered_map<std::string, int64_t>& piece_counts,
                                                      int num_merges) {
  // Sorted so that the work (not the result, which ties make independent of order) is reproducible.
  std::vector<std::pair<std::string, int64_t>> sorted(piece_counts.begin(), piece_counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [piece, n] : sorted) {
    std::vector<int32_t> w;
    for (char c : piece) w.push_back(static_cast<unsigned char>(c));
    words.push_back(std::move(w));
    freq.push_back(n);
  }
  std::unordered_map<uint64_t, int64_t> count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // may list a word twice or stale; checked on use
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      uint64_t k = pair_key(words[w][i], words[w][i + 1]);
      count[k] += freq[w];
      where[k].push_back(static_cast<int32_t>(w));
    }
  // Highest count first; among equal counts the smallest key, i.e. the smallest (left, right).
  auto worse = [](const std::pair<int64_t, uint64_t>& x, const std::pair<int64_t, uint64_t>& y) {
    return x.first != y.first ? x.first < y.first : x.second > y.second;
  };
  std::priority_queue<std::pair<int64_t, uint64_t>, std::vector<std::pair<int64_t, uint64_t>>, decltype(worse)> heap(
      worse);
  for (const auto& [k, n] : count) heap.push({n, k});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> seen_at(words.size(), -1);
  while (static_cast<int>(merges.size()) < num_merges && !heap.empty()) {
    auto [n, key] = heap.top();
    heap.pop();
    auto it = count.find(key);
    if (it == count.end() || it->second != n || n <= 0) continue;  // stale entry
    const int32_t a = static_cast<int32_t>(key >> 32), b = static_cast<int32_t>(key & 0xffffffffu);
    const int32_t merged = BpeTokenizer::kFirstMerge + static_cast<int32_t>(merges.size());
    merges.emplace_back(a, b);
    std::unordered_set<uint64_t> changed;
    std::vector<int32_t> users = std::move(where[key]);
    where.erase(key);
    for (int32_t w : users) {
      if (seen_at[w] == merged) continue;
      seen_at[w] = merged;
      std::vector<int32_t>& word = words[w];
      std::vector<int32_t> next;
      bool hit = false;
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) {
          next.push_back(merged);
          ++i;
          hit = true;
        } else {
          next.push_back(word[i]);
        }
      }
      if (!hit) continue;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        uint64_t k = pair_key(word[i], word[i + 1]);
        count[k] -= freq[w];
        changed.insert(k);
      }
      for (size_t i = 0; i + 1 < next.size(); ++i) {
        uint64_t k = pair_key(next[i], next[i + 1]);
        count[k] += freq[w];
        changed.insert(k);
        if (next[i] == merged || next[i + 1] == merged) where[k].push_back(w);
      }
      word = std::move(next);
    }
    for (uint64_t k : changed) {
      auto c = count.find(k);
      if (c->second <= 0) {
        count.erase(c);
      } else {
        heap.push({c->second, k});
      }
    }
  }
  return merges;
}

int checked_merge_count(int vocab_size) {
  RW_USER_CHECK(vocab_size >= BpeTokenizer::kFirstMerge && vocab_size <= (1 << 24),
                "--vocab-size %d: a byte-level BPE vocabulary needs between %d (bytes and end-of-document) and %d",
                vocab_size, BpeTokenizer::kFirstMerge, 1 << 24);
  return vocab_size - BpeTokenizer::kFirstMerge;
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::train(const std::vector<std::string>& inputs, int vocab_size) {
  const int num_merges = checked_merge_count(vocab_size);
  PieceCounter counter;
  for (const std::string& input : inputs)
    for (const std::string& file : list_data_files(input)) counter.add_file(file);
  return std::make_unique<BpeTokenizer>(learn_merges(counter.counts(), num_merges), "");
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::train_from_text(const std::string& text, int vocab_size) {
  const int num_merges = checked_merge_count(vocab_size);
  PieceCounter counter;
  counter.add(text);
  return std::make_unique<BpeTokenizer>(learn_merges(counter.counts(), num_merges), "");
}

BpeTokenizer::BpeTokenizer(std::vector<std::pair<int32_t, int32_t>> merges, std::string file)
    : merges_(std::move(merges)), file_(std::move(file)) {
  for (int b = 0; b < 256; ++b) bytes_of_.push_back(std::string(1, static_cast<char>(b)));
  bytes_of_.push_back("");  // end of document
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto [a, b] = merges_[i];
    RW_CHECK(a >= 0 && b >= 0 && a < kFirstMerge + static_cast<int>(i) && b < kFirstMerge + static_cast<int>(i) &&
                 a != kEod && b != kEod,
             "merge %zu (%d, %d) refers to an unknown or later token", i, a, b);
    merge_table_.add(a, b, kFirstMerge + static_cast<int32_t>(i));
    bytes_of_.push_back(bytes_of_[a] + bytes_of_[b]);
  }
}

void BpeTokenizer::save(const std::string& path) const {
  nlohmann::json j;
  j["kind"] = "ringwise-bpe";
  j["format_version"] = 1;
  j["vocab_size"] = vocab_size();
  j["eod_token"] = kEod;
  j["merges"] = merges_;
  std::ofstream out(path);
  out << j.dump() << '\n';
  out.close();
  RW_USER_CHECK(out.good(), "cannot write tokenizer file %s: %s", path.c_str(), std::strerror(errno));
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  for_each_piece(text, [&](std::string_view p) {
    cache_.append(p, ids, [&](std::string_view piece) {
      std::vector<int32_t> sym(piece.begin(), piece.end());
      for (int32_t& s : sym) s = static_cast<unsigned char>(s);
      merge_table_.apply(sym);
      return sym;
    });
  });
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids)
    if (id >= 0 && id < vocab_size()) text += bytes_of_[id];
  return text;
}

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& path) {
  std::ifstream in(path);
  RW_USER_CHECK(in.good(), "cannot read BPE tokenizer file %s: %s", path.c_str(), std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UserError("BPE tokenizer file " + path + " is not valid JSON: " + e.what());
  }
  auto field = [&](const char* key) -> const nlohmann::json& {
    RW_USER_CHECK(j.is_object() && j.contains(key), "BPE tokenizer file %s has no field '%s'", path.c_str(), key);
    return j[key];
  };
  RW_USER_CHECK(field("kind") == "ringwise-bpe", "BPE tokenizer file %s: field 'kind' is not \"ringwise-bpe\"",
                path.c_str());
  RW_USER_CHECK(field("format_version") == 1, "BPE tokenizer file %s: unsupported format_version %s", path.c_str(),
                field("format_version").dump().c_str());
  RW_USER_CHECK(field("eod_token") == BpeTokenizer::kEod, "BPE tokenizer file %s: field 'eod_token' must be %d",
                path.c_str(), BpeTokenizer::kEod);
  const nlohmann::json& list = field("merges");
  RW_USER_CHECK(list.is_array(), "BPE tokenizer file %s: field 'merges' is not a list", path.c_str());
  std::vector<std::pair<int32_t, int32_t>> merges;
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& m = list[i];
    const int64_t limit = BpeTokenizer::kFirstMerge + static_cast<int64_t>(i);
    bool ok = m.is_array() && m.size() == 2 && m[0].is_number_integer() && m[1].is_number_integer();
    for (int s = 0; ok && s < 2; ++s) {
      const int64_t id = m[s].get<int64_t>();
      ok = id >= 0 && id < limit && id != BpeTokenizer::kEod;
    }
    RW_USER_CHECK(ok, "BPE tokenizer file %s: merges[%zu] is not a pair of earlier token ids", path.c_str(), i);
    merges.emplace_back(m[0].get<int32_t>(), m[1].get<int32_t>());
  }
  RW_USER_CHECK(field("vocab_size") == BpeTokenizer::kFirstMerge + static_cast<int64_t>(merges.size()),
                "BPE tokenizer file %s: field 'vocab_size' %s does not equal 257 + %zu merges", path.c_str(),
                field("vocab_size").dump().c_str(), merges.size());
  return std::make_unique<BpeTokenizer>(std::move(merges), path);
}

}  // namespace rw
