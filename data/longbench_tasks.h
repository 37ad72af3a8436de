// LongBench tasks: the per-dataset table (prompt template, generation length, metric; the data
// file data/longbench/config.json, compiled in), the benchmark's JSONL records, prompt formatting
// and middle truncation, as the reference harness's pred.py does them.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace rw::longbench {

struct TaskSpec {
  std::string name;            // "hotpotqa"; its data file is <name>.jsonl (<name>_e.jsonl for LongBench-E)
  std::string prompt;          // template with {context} and {input}
  int max_new_tokens = 0;
  std::string metric;          // a name for metric_by_name()
  bool first_line_only = false;  // scored on the prediction's first line
  bool stop_at_newline = false;  // generation also ends at a newline
  bool longbench_e = false;      // part of LongBench-E
};

struct TaskTable {
  std::vector<TaskSpec> tasks;  // in the file's order
  // UserError naming the task and the known ones when absent.
  const TaskSpec& at(const std::string& name) const;
};

// Parses a table in config.json's format; UserError naming `where` and the field otherwise.
TaskTable parse_task_table(const std::string& json_text, const std::string& where);
const TaskTable& builtin_task_table();
const char* builtin_config_json();  // data/longbench/config.json (generated source)

struct Record {
  std::string input, context;
  std::vector<std::string> answers;      // numbers are kept as their JSON text
  std::vector<std::string> all_classes;  // null in the file: none
  int64_t length = 0;                    // the record's length in words (characters for Chinese)
  std::string dataset, language, id;
};
// One record per non-empty line; UserError naming the file, line and field.
std::vector<Record> read_records(const std::string& path);

// Calls `each` with every non-blank line of the JSONL file at `path`, parsed, and its "path:line"
// for messages. UserError "cannot open <what> <path>", naming the line for one that is not JSON,
// or when reading fails.
void for_each_json_line(const std::string& path, const char* what,
                        const std::function<void(const nlohmann::json& j, const std::string& where)>& each);

// Python's str.format with the record's fields: {context}, {input}, {dataset}, {language}, {_id};
// {{ and }} are literal braces. UserError for another field or a lone brace.
std::string format_prompt(const std::string& templ, const Record& record);

// pred.py's truncation: a prompt of more than max_length tokens keeps its first and last
// max_length/2 tokens (instructions sit at both ends), decoded back to text.
std::string truncate_middle(const std::string& prompt, const Tokenizer& tokenizer, int max_length);

}  // namespace rw::longbench
