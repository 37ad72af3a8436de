// `ringwise eval --benchmark longbench`: generates answers for LongBench (or LongBench-E) records
// with a checkpoint's model and scores them the way the reference harness does (THUDM/LongBench
// pred.py, then eval.py): pred/<model>/<dataset>.jsonl per dataset, then result.json and a table.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "core/check.h"
#include "data/longbench_scorer.h"
#include "data/longbench_tasks.h"
#include "data/tokenizer.h"
#include "jobs/cli.h"
#include "jobs/checkpoint_model.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/inference_ranks.h"
#include "models/llama.h"
#include "models/llama_inference.h"

namespace rw {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using longbench::Prediction;
using longbench::TaskSpec;

struct EvalOptions {
  std::string checkpoint, tokenizer = "byte", data_dir, output, model_name;
  std::vector<std::string> datasets;  // empty: every table dataset with a file in data_dir
  bool longbench_e = false, score_only = false, force = false;
  int max_length = 0;  // 0: the model's max_seq less the dataset's max_new_tokens
  int limit = 0;       // 0: every record
  int cp = 1;          // ranks each sequence is spread over (under mpirun)
};

void print_help(std::ostream& out) {
  out << "Usage: ringwise eval --benchmark longbench --data-dir DIR (--checkpoint FILE.h5 | --score-only) [options]\n"
         "\n"
         "Runs LongBench the way its reference harness (THUDM/LongBench pred.py and eval.py) does:\n"
         "formats each record with the dataset's prompt, truncates it in the middle to --max-length\n"
         "tokens, decodes greedily with a KV cache up to the dataset's generation length or the end\n"
         "token, writes OUTPUT/MODEL/<dataset>.jsonl and scores them into OUTPUT/MODEL/result.json.\n"
         "A Hugging Face LLaMA model is evaluated after 'ringwise import'.\n";
  print_option_lines(out, "Evaluation",
                     {{"--benchmark NAME", "longbench (the only one so far)"},
                      {"--data-dir DIR", "LongBench's JSONL files: <dataset>.jsonl, <dataset>_e.jsonl"},
                      {"--datasets A,B", "datasets to run (default: every one with a file in --data-dir)"},
                      {"--e", "LongBench-E: the _e files, scores by length 0-4k, 4-8k, 8k+"},
                      {"--checkpoint FILE", "a ringwise checkpoint (step_*.h5 or 'ringwise import' output)"},
                      {"--tokenizer SPEC", kTokenizerSpecHelp},
                      {"--max-length N", "prompt tokens kept (default: max_seq minus the generation length)"},
                      {"--limit N", "only the first N records of each dataset"},
                      {"--output DIR", "predictions and result.json (default pred, or pred_e with --e)"},
                      {"--model-name NAME", "subdirectory of --output (default: the checkpoint's file stem)"},
                      {"--score-only", "score the predictions already in OUTPUT/MODEL, generate nothing"},
                      {"--force", "replace existing prediction files"},
                      {"--cp P", "spread each sequence over P ranks: mpirun -np P ringwise eval --cp P ..."},
                      {"-h, --help", "show this help"}});
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string data_file(const EvalOptions& o, const TaskSpec& t) {
  return o.data_dir + "/" + t.name + (o.longbench_e ? "_e" : "") + ".jsonl";
}

// The datasets to run: named ones must exist and be in the benchmark; by default every table
// entry whose file is present.
std::vector<TaskSpec> selected_tasks(const EvalOptions& o) {
  const longbench::TaskTable& table = longbench::builtin_task_table();
  std::vector<TaskSpec> tasks;
  if (!o.datasets.empty()) {
    for (const std::string& name : o.datasets) {
      const TaskSpec& t = table.at(name);
      RW_USER_CHECK(!o.longbench_e || t.longbench_e, "--datasets: %s is not part of LongBench-E", name.c_str());
      RW_USER_CHECK(o.score_only || fs::is_regular_file(data_file(o, t)), "--datasets: no file %s",
                    data_file(o, t).c_str());
      tasks.push_back(t);
    }
    return tasks;
  }
  for (const TaskSpec& t : table.tasks)
    if ((!o.longbench_e || t.longbench_e) && fs::is_regular_file(data_file(o, t))) tasks.push_back(t);
  RW_USER_CHECK(!tasks.empty(), "--data-dir %s holds no LongBench%s file (<dataset>%s.jsonl)", o.data_dir.c_str(),
                o.longbench_e ? "-E" : "", o.longbench_e ? "_e" : "");
  return tasks;
}

// The end tokens of a dataset: the tokenizer's end of document, and for samsum a newline too
// (pred.py's extra eos_token_id, the last id of "\n").
std::vector<int32_t> stop_tokens(const Tokenizer& tok, const TaskSpec& t) {
  std::vector<int32_t> stops = {tok.eod_token()};
  if (t.stop_at_newline) {
    const std::vector<int32_t> nl = tok.encode("\n");
    if (!nl.empty()) stops.push_back(nl.back());
  }
  return stops;
}

// Writes through a temporary file renamed at the end, so a failed run leaves no partial file.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    RW_USER_CHECK(out.good(), "cannot write %s", tmp.c_str());
    out << text;
    out.flush();
    RW_USER_CHECK(out.good(), "error writing %s", tmp.c_str());
  }
  fs::rename(tmp, path);
}

// Prompt tokens kept for a dataset: --max-length, or what the context leaves after generation.
int prompt_budget(const EvalOptions& o, const TaskSpec& task, int max_seq) {
  const int max_length = o.max_length ? o.max_length : max_seq - task.max_new_tokens;
  RW_USER_CHECK(max_length >= 2 && max_length + task.max_new_tokens <= max_seq,
                "%s: a prompt of %d tokens plus %d generated ones does not fit the model's max_seq %d (set "
                "--max-length, or leave out the dataset)",
                task.name.c_str(), max_length, task.max_new_tokens, max_seq);
  return max_length;
}

// Every cp rank predicts (the ranks decode together); only the one that writes says what was cut.
std::vector<Prediction> predict(const EvalOptions& o, const TaskSpec& task, LlamaInference& engine,
                                const Tokenizer& tok, bool writes) {
  const int max_length = prompt_budget(o, task, engine.capacity());
  std::vector<longbench::Record> records = longbench::read_records(data_file(o, task));
  if (o.limit > 0 && static_cast<int>(records.size()) > o.limit) records.resize(o.limit);
  GenerateOptions gen;
  gen.max_new_tokens = task.max_new_tokens;
  gen.stop_tokens = stop_tokens(tok, task);
  std::vector<Prediction> out;
  int cut = 0;
  for (const longbench::Record& r : records) {
    const std::string full = longbench::format_prompt(task.prompt, r);
    const std::string prompt = longbench::truncate_middle(full, tok, max_length);
    cut += prompt != full;
    std::vector<int32_t> ids = tok.encode(prompt);
    // Decoding the two halves and encoding again can merge tokens differently (as in pred.py);
    // keep the end, where the question is, if it grew.
    if (static_cast<int>(ids.size()) > max_length) ids.erase(ids.begin(), ids.end() - max_length);
    out.push_back({tok.decode(generate(engine, ids, gen)), r.answers, r.all_classes, r.length});
  }
  // pred.py cuts silently; say so, since a cut can remove what the question asks about (a probe's
  // needle in the middle) and leave a score of zero with no other sign.
  if (cut > 0 && writes)
    std::fprintf(stderr, "ringwise eval: %d of %zu %s prompts were longer than %d tokens and were cut in the middle\n",
                 cut, records.size(), task.name.c_str(), max_length);
  return out;
}

std::string score_text(double s) {
  char buf[32];
  if (std::isnan(s)) return "-";
  std::snprintf(buf, sizeof buf, "%.2f", s);
  return buf;
}

nlohmann::json score_json(double s) { return std::isnan(s) ? nlohmann::json() : nlohmann::json(s); }

int run_eval(const EvalOptions& o) {
  const std::vector<TaskSpec> tasks = selected_tasks(o);
  const std::string dir = o.output + "/" + o.model_name;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<LlamaInference> engine;
  std::unique_ptr<InferenceRanks> ranks;
  if (!o.score_only) {
    ranks = std::make_unique<InferenceRanks>(o.cp, "eval");
    for (const TaskSpec& t : tasks) {
      const std::string pred = dir + "/" + t.name + ".jsonl";
      RW_USER_CHECK(o.force || !fs::exists(pred), "%s exists (use --force to replace it, or --score-only)",
                    pred.c_str());
    }
    tok = open_tokenizer(o.tokenizer);
    model = load_checkpoint_model(o.checkpoint);
    // A model trained on raw bytes has vocab 256 while the byte tokenizer also counts its end token,
    // so the vocabularies may differ by that id; an out-of-vocab prompt token is refused on use.
    RW_USER_CHECK(tok->vocab_size() - 1 <= model->config().vocab_size,
                  "tokenizer %s has %d ids, more than the model's vocab_size %d", o.tokenizer.c_str(),
                  tok->vocab_size(), model->config().vocab_size);
    engine = std::make_unique<LlamaInference>(*model, model->config().max_seq);
    ranks->attach(*engine);
    for (const TaskSpec& t : tasks) prompt_budget(o, t, engine->capacity());  // fail before writing anything
    if (!ranks->writes()) {
      for (const TaskSpec& t : tasks) predict(o, t, *engine, *tok, false);
      return 0;
    }
    fs::create_directories(dir);
  }
  nlohmann::json result = nlohmann::json::object();
  std::printf("%-22s %-15s %6s  %s\n", "dataset", "metric", "n", o.longbench_e ? "0-4k    4-8k    8k+" : "score");
  for (const TaskSpec& t : tasks) {
    const std::string pred_path = dir + "/" + t.name + ".jsonl";
    if (!o.score_only) {
      std::string lines;
      for (const Prediction& p : predict(o, t, *engine, *tok, true))
        lines += longbench::prediction_json_line(p) + "\n";
      write_file(pred_path, lines);
    }
    const std::vector<Prediction> preds = longbench::read_predictions(pred_path);
    if (o.longbench_e) {
      const longbench::LengthBucketScores s = longbench::score_dataset_by_length(t, preds);
      result[t.name] = {{"0-4k", score_json(s.upto_4k)}, {"4-8k", score_json(s.upto_8k)}, {"8k+", score_json(s.over_8k)}};
      std::printf("%-22s %-15s %6zu  %-7s %-7s %s\n", t.name.c_str(), t.metric.c_str(), preds.size(),
                  score_text(s.upto_4k).c_str(), score_text(s.upto_8k).c_str(), score_text(s.over_8k).c_str());
    } else {
      const double s = longbench::score_dataset(t, preds);
      result[t.name] = s;
      std::printf("%-22s %-15s %6zu  %s\n", t.name.c_str(), t.metric.c_str(), preds.size(), score_text(s).c_str());
    }
    std::fflush(stdout);
  }
  fs::create_directories(dir);
  write_file(dir + "/result.json", result.dump(4) + "\n");
  std::printf("wrote %s/result.json\n", dir.c_str());
  return 0;
}

}  // namespace

int eval_command(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("benchmark", po::value<std::string>())("data-dir", po::value<std::string>())(
      "datasets", po::value<std::string>())("e", "")("checkpoint", po::value<std::string>())(
      "tokenizer", po::value<std::string>())("max-length", po::value<std::string>())("limit", po::value<std::string>())(
      "output", po::value<std::string>())("model-name", po::value<std::string>())("score-only", "")("force", "")(
      "cp", po::value<std::string>())("help,h", "");
  const po::variables_map vm = parse_command_line(args, desc, "eval");
  if (vm.count("help")) {
    print_help(std::cout);
    return 0;
  }
  auto get = [&](const char* key) { return vm.count(key) ? vm[key].as<std::string>() : std::string(); };
  RW_USER_CHECK(vm.count("benchmark"), "--benchmark is required (ringwise eval --benchmark longbench ...)");
  RW_USER_CHECK(get("benchmark") == "longbench", "unknown --benchmark '%s' (available: longbench)",
                get("benchmark").c_str());
  EvalOptions o;
  o.longbench_e = vm.count("e") > 0;
  o.score_only = vm.count("score-only") > 0;
  o.force = vm.count("force") > 0;
  o.data_dir = get("data-dir");
  o.checkpoint = get("checkpoint");
  o.datasets = split_commas(get("datasets"));
  if (vm.count("tokenizer")) o.tokenizer = get("tokenizer");
  if (vm.count("max-length")) o.max_length = parse_int(get("max-length"), "--max-length");
  if (vm.count("limit")) o.limit = parse_int(get("limit"), "--limit");
  if (vm.count("cp")) o.cp = parse_int(get("cp"), "--cp");
  RW_USER_CHECK(!o.score_only || o.cp == 1, "--score-only generates nothing to spread over --cp ranks");
  o.output = vm.count("output") ? get("output") : o.longbench_e ? "pred_e" : "pred";
  RW_USER_CHECK(o.score_only || !o.checkpoint.empty(), "--checkpoint is required unless --score-only is given");
  RW_USER_CHECK(o.score_only || !o.data_dir.empty(), "--data-dir is required unless --score-only is given");
  RW_USER_CHECK(!o.score_only || !o.datasets.empty() || !o.data_dir.empty(),
                "--score-only needs --datasets or --data-dir to know which predictions to score");
  RW_USER_CHECK(vm.count("max-length") == 0 || o.max_length >= 2, "--max-length must be at least 2, got %d",
                o.max_length);
  RW_USER_CHECK(o.limit >= 0, "--limit must not be negative, got %d", o.limit);
  o.model_name = vm.count("model-name") ? get("model-name") : fs::path(o.checkpoint).stem().string();
  RW_USER_CHECK(!o.model_name.empty(), "--model-name is required with --score-only and no --checkpoint");
  return run_eval(o);
}

}  // namespace rw
