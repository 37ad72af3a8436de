#include "models/hf_config.h"

#include <charconv>
#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/check.h"

namespace rw {
namespace {

using nlohmann::json;

int get_int(const json& j, const char* key, const std::string& where) {
  RW_USER_CHECK(j.contains(key), "%s: missing key \"%s\"", where.c_str(), key);
  const json& v = j[key];
  RW_USER_CHECK(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= INT_MAX,
                "%s: \"%s\" must be a positive integer, got %s", where.c_str(), key, v.dump().c_str());
  return v.get<int>();
}

int get_int(const json& j, const char* key, int fallback, const std::string& where) {
  return j.contains(key) && !j[key].is_null() ? get_int(j, key, where) : fallback;
}

float get_float(const json& j, const char* key, float fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  RW_USER_CHECK(j[key].is_number() && j[key].get<double>() > 0, "%s: \"%s\" must be a positive number, got %s",
                where.c_str(), key, j[key].dump().c_str());
  return j[key].get<float>();
}

bool get_bool(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return false;
  RW_USER_CHECK(j[key].is_boolean(), "%s: \"%s\" must be true or false, got %s", where.c_str(), key,
                j[key].dump().c_str());
  return j[key].get<bool>();
}

void require_string(const json& j, const char* key, const char* expected, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  RW_USER_CHECK(j[key].is_string() && j[key].get<std::string>() == expected,
                "%s: \"%s\" is %s; ringwise supports only \"%s\"", where.c_str(), key, j[key].dump().c_str(), expected);
}

// The shortest decimal that reads back as this float, so 1e-5f is written 1e-05, not 9.99999974e-06.
double shortest(float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf - 1, f);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace

LlamaConfig parse_hf_config(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw UserError(where + ": not valid JSON: " + e.what());
  }
  RW_USER_CHECK(j.is_object(), "%s: not a JSON object", where.c_str());
  require_string(j, "model_type", "llama", where);
  require_string(j, "hidden_act", "silu", where);
  RW_USER_CHECK(!j.contains("rope_scaling") || j["rope_scaling"].is_null(),
                "%s: \"rope_scaling\" %s is not supported (ringwise implements plain RoPE)", where.c_str(),
                j["rope_scaling"].dump().c_str());
  RW_USER_CHECK(!get_bool(j, "attention_bias", where), "%s: \"attention_bias\": true is not supported", where.c_str());
  RW_USER_CHECK(!get_bool(j, "mlp_bias", where), "%s: \"mlp_bias\": true is not supported", where.c_str());

  LlamaConfig c;
  c.vocab_size = get_int(j, "vocab_size", where);
  c.d_model = get_int(j, "hidden_size", where);
  c.n_layers = get_int(j, "num_hidden_layers", where);
  c.n_heads = get_int(j, "num_attention_heads", where);
  c.n_kv_heads = get_int(j, "num_key_value_heads", c.n_heads, where);
  c.ffn_dim = get_int(j, "intermediate_size", where);
  c.max_seq = get_int(j, "max_position_embeddings", 2048, where);
  c.rope_theta = get_float(j, "rope_theta", 10000.0f, where);
  c.norm_eps = get_float(j, "rms_norm_eps", 1e-6f, where);
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", where);

  // The shape rules, in config.json's own words (validate() below speaks in ringwise's options).
  RW_USER_CHECK(c.d_model % c.n_heads == 0, "%s: \"num_attention_heads\" %d must divide \"hidden_size\" %d",
                where.c_str(), c.n_heads, c.d_model);
  const int head_dim = get_int(j, "head_dim", c.head_dim(), where);
  RW_USER_CHECK(head_dim == c.head_dim(), "%s: \"head_dim\" %d differs from hidden_size / num_attention_heads = %d",
                where.c_str(), head_dim, c.head_dim());
  RW_USER_CHECK(c.n_heads % c.n_kv_heads == 0, "%s: \"num_key_value_heads\" %d must divide \"num_attention_heads\" %d",
                where.c_str(), c.n_kv_heads, c.n_heads);
  try {
    c.validate();
  } catch (const UserError& e) {
    throw UserError(where + ": " + e.what());
  }
  return c;
}

std::string hf_config_json(const LlamaConfig& c) {
  const json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"torch_dtype", "float32"},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.d_model},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim()},
      {"intermediate_size", c.ffn_dim},
      {"max_position_embeddings", c.max_seq},
      {"rope_theta", shortest(c.rope_theta)},
      {"rms_norm_eps", shortest(c.norm_eps)},
      {"tie_word_embeddings", c.tied_embeddings},
      {"hidden_act", "silu"},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"mlp_bias", false},
  };
  return j.dump(2) + "\n";
}

}  // namespace rw
