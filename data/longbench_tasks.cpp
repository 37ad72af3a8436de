#include "data/longbench_tasks.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace rw::longbench {
namespace {

using nlohmann::json;

const json& field(const json& obj, const char* key, json::value_t type, const std::string& where) {
  RW_USER_CHECK(obj.contains(key), "%s: missing field '%s'", where.c_str(), key);
  const json& v = obj[key];
  const bool ok = type == json::value_t::number_integer ? v.is_number_integer() : v.type() == type;
  RW_USER_CHECK(ok, "%s: field '%s' has the wrong type (%s)", where.c_str(), key, v.type_name());
  return v;
}

// Answers and classes are strings in LongBench; a number or other value counts as its JSON text.
std::vector<std::string> string_list(const json& obj, const char* key, bool null_ok, const std::string& where) {
  RW_USER_CHECK(obj.contains(key), "%s: missing field '%s'", where.c_str(), key);
  const json& v = obj[key];
  if (v.is_null() && null_ok) return {};
  RW_USER_CHECK(v.is_array(), "%s: field '%s' is not a list", where.c_str(), key);
  std::vector<std::string> out;
  for (const json& e : v) out.push_back(e.is_string() ? e.get<std::string>() : e.dump());
  return out;
}

std::string optional_string(const json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_string() ? obj[key].get<std::string>() : "";
}

}  // namespace

const TaskSpec& TaskTable::at(const std::string& name) const {
  std::string known;
  for (const TaskSpec& t : tasks) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  throw UserError("unknown LongBench dataset '" + name + "' (known: " + known + ")");
}

TaskTable parse_task_table(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw UserError(where + ": not JSON: " + e.what());
  }
  RW_USER_CHECK(j.is_object(), "%s: expected a JSON object", where.c_str());
  const json& datasets = field(j, "datasets", json::value_t::object, where);
  TaskTable table;
  for (auto it = datasets.begin(); it != datasets.end(); ++it) {
    const std::string at = where + ": datasets." + it.key();
    RW_USER_CHECK(it->is_object(), "%s: expected an object", at.c_str());
    TaskSpec t;
    t.name = it.key();
    t.prompt = field(*it, "prompt", json::value_t::string, at).get<std::string>();
    t.max_new_tokens = field(*it, "max_new_tokens", json::value_t::number_integer, at).get<int>();
    t.metric = field(*it, "metric", json::value_t::string, at).get<std::string>();
    t.first_line_only = field(*it, "first_line_only", json::value_t::boolean, at).get<bool>();
    t.stop_at_newline = field(*it, "stop_at_newline", json::value_t::boolean, at).get<bool>();
    t.longbench_e = field(*it, "longbench_e", json::value_t::boolean, at).get<bool>();
    RW_USER_CHECK(t.max_new_tokens >= 1, "%s: max_new_tokens must be at least 1, got %d", at.c_str(),
                  t.max_new_tokens);
    table.tasks.push_back(t);
  }
  return table;
}

const TaskTable& builtin_task_table() {
  static const TaskTable table = parse_task_table(builtin_config_json(), "data/longbench/config.json");
  return table;
}

void for_each_json_line(const std::string& path, const char* what,
                        const std::function<void(const json& j, const std::string& where)>& each) {
  std::ifstream in(path, std::ios::binary);
  RW_USER_CHECK(in.good(), "cannot open %s %s", what, path.c_str());
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw UserError(where + ": not a JSON line: " + e.what());
    }
    each(j, where);
  }
  RW_USER_CHECK(!in.bad(), "error reading %s", path.c_str());
}

std::vector<Record> read_records(const std::string& path) {
  std::vector<Record> records;
  for_each_json_line(path, "LongBench file", [&](const json& j, const std::string& where) {
    RW_USER_CHECK(j.is_object(), "%s: expected a JSON object", where.c_str());
    Record r;
    r.input = field(j, "input", json::value_t::string, where).get<std::string>();
    r.context = field(j, "context", json::value_t::string, where).get<std::string>();
    r.answers = string_list(j, "answers", false, where);
    r.all_classes = string_list(j, "all_classes", true, where);
    r.length = field(j, "length", json::value_t::number_integer, where).get<int64_t>();
    r.dataset = optional_string(j, "dataset");
    r.language = optional_string(j, "language");
    r.id = optional_string(j, "_id");
    RW_USER_CHECK(!r.answers.empty(), "%s: field 'answers' is empty", where.c_str());
    records.push_back(std::move(r));
  });
  return records;
}

std::string format_prompt(const std::string& templ, const Record& record) {
  std::string out;
  for (size_t i = 0; i < templ.size(); ++i) {
    const char c = templ[i];
    if ((c == '{' || c == '}') && i + 1 < templ.size() && templ[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    RW_USER_CHECK(c != '}', "prompt template has a lone '}' at offset %zu", i);
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t end = templ.find('}', i);
    RW_USER_CHECK(end != std::string::npos, "prompt template has an unclosed '{' at offset %zu", i);
    const std::string name = templ.substr(i + 1, end - i - 1);
    if (name == "context") out += record.context;
    else if (name == "input") out += record.input;
    else if (name == "dataset") out += record.dataset;
    else if (name == "language") out += record.language;
    else if (name == "_id") out += record.id;
    else throw UserError("prompt template names an unknown field {" + name + "}");
    i = end;
  }
  return out;
}

std::string truncate_middle(const std::string& prompt, const Tokenizer& tokenizer, int max_length) {
  RW_USER_CHECK(max_length >= 2, "--max-length must be at least 2, got %d", max_length);
  const std::vector<int32_t> ids = tokenizer.encode(prompt);
  if (static_cast<int64_t>(ids.size()) <= max_length) return prompt;
  const size_t half = max_length / 2;
  return tokenizer.decode(std::vector<int32_t>(ids.begin(), ids.begin() + half)) +
         tokenizer.decode(std::vector<int32_t>(ids.end() - half, ids.end()));
}

}  // namespace rw::longbench
