#include "data/longbench_probes.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/random.h"

namespace rw::longbench {
namespace {

const char* const kFiller[] = {"The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
                               "There and back again."};

// Filler sentences until `words` words, with `needle` inserted before the sentence at fraction
// `depth` of them. Returns the context.
std::string filler_with_needle(int words, double depth, const std::string& needle) {
  std::vector<std::string> sentences;
  for (int n = 0, i = 0; n < words; ++i) {
    sentences.push_back(kFiller[i % 5]);
    n += i % 5 == 3 ? 3 : 4;  // words per filler sentence
  }
  const size_t at = static_cast<size_t>(depth * sentences.size() + 0.5);
  std::string out;
  for (size_t i = 0; i <= sentences.size(); ++i) {
    if (i == at) out += needle + " ";
    if (i < sentences.size()) out += sentences[i] + " ";
  }
  out.pop_back();
  return out;
}

std::string hex(Rng& rng, int digits) {
  std::string s;
  for (int i = 0; i < digits; ++i) s += "0123456789abcdef"[rng.next_u64() % 16];
  return s;
}

Record passkey(int words, double depth, Rng& rng) {
  const std::string key = std::to_string(10000 + rng.next_u64() % 90000);
  Record r;
  r.context = filler_with_needle(words, depth, "The pass key is " + key + ". Remember it. " + key + " is the pass key.");
  r.input = "What is the pass key?";
  r.answers = {key};
  return r;
}

Record kv_retrieval(int words, double depth, Rng& rng) {
  const int pairs = std::max(1, words / 2);  // "key: value" lines of two words
  const int target = std::min(pairs - 1, static_cast<int>(depth * pairs));
  Record r;
  std::string key;
  for (int i = 0; i < pairs; ++i) {
    const std::string k = hex(rng, 8), v = hex(rng, 8);
    if (i == target) {
      key = k;
      r.answers = {v};
    }
    r.context += k + ": " + v + "\n";
  }
  r.input = "What is the value of key " + key + "?";
  return r;
}

Record counting(int words, Rng& rng) {
  const int max_marks = std::max(1, std::min(9, words / 40));
  const int marks = 1 + static_cast<int>(rng.next_u64() % max_marks);
  std::string context;
  // The marker sentences at random sentence slots of the filler.
  const std::string filler = filler_with_needle(words, 0.0, "");
  std::vector<size_t> ends;
  for (size_t i = 0; i < filler.size(); ++i)
    if (filler[i] == '.') ends.push_back(i + 1);
  std::vector<bool> marked(ends.size(), false);
  for (int placed = 0; placed < marks && placed < static_cast<int>(ends.size());) {
    const size_t slot = rng.next_u64() % ends.size();
    if (!marked[slot]) marked[slot] = true, ++placed;
  }
  size_t from = 0;
  for (size_t i = 0; i < ends.size(); ++i) {
    context += filler.substr(from, ends[i] - from);
    if (marked[i]) context += " I ate an apple.";
    from = ends[i];
  }
  Record r;
  r.context = context + filler.substr(from);
  r.input = "How many times does the sentence 'I ate an apple.' occur?";
  r.answers = {std::to_string(std::count(marked.begin(), marked.end(), true))};
  return r;
}

}  // namespace

std::vector<Record> make_probes(const ProbeOptions& o) {
  RW_USER_CHECK(o.kind == "passkey" || o.kind == "kv_retrieval" || o.kind == "counting",
                "--kind must be passkey, kv_retrieval or counting, got '%s'", o.kind.c_str());
  RW_USER_CHECK(!o.lengths.empty() && !o.depths.empty(), "--lengths and --depths need at least one value each");
  RW_USER_CHECK(o.per_cell >= 1, "--per-cell must be at least 1, got %d", o.per_cell);
  for (int len : o.lengths) RW_USER_CHECK(len >= 8, "--lengths: %d words is too short for a probe (8 at least)", len);
  for (double d : o.depths) RW_USER_CHECK(d >= 0 && d <= 1, "--depths: %g is outside [0, 1]", d);
  std::vector<Record> out;
  uint64_t index = 0;
  for (int len : o.lengths) {
    for (double depth : o.depths) {
      for (int copy = 0; copy < o.per_cell; ++copy, ++index) {
        Rng rng(o.seed, index);
        Record r = o.kind == "passkey" ? passkey(len, depth, rng)
                   : o.kind == "kv_retrieval" ? kv_retrieval(len, depth, rng)
                                              : counting(len, rng);
        r.length = len;
        r.dataset = o.kind;
        r.language = "en";
        char id[64];
        std::snprintf(id, sizeof id, "%s-%d-%.2f-%d", o.kind.c_str(), len, depth, copy);
        r.id = id;
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

std::string record_json_line(const Record& r) {
  const nlohmann::json j = {{"input", r.input},     {"context", r.context},   {"answers", r.answers},
                            {"length", r.length},   {"all_classes", nullptr}, {"dataset", r.dataset},
                            {"language", r.language}, {"_id", r.id}};
  return j.dump();
}

std::string training_text(const Record& r) {
  return format_prompt(builtin_task_table().at(r.dataset).prompt, r) + " " + r.answers.at(0);
}

std::string training_json_line(const Record& r) { return nlohmann::json{{"text", training_text(r)}}.dump(); }

}  // namespace rw::longbench
