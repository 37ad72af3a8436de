#include "jobs/trainer.h"

#include <chrono>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/cpu_threads.h"

namespace rw {
namespace {

cpu::AdamWParams adamw_hyper(const TrainConfig& t) {
  cpu::AdamWParams h;
  h.lr = t.lr;
  h.beta1 = t.beta1;
  h.beta2 = t.beta2;
  h.eps = t.adam_eps;
  h.weight_decay = t.weight_decay;
  return h;
}

// The data must fit the model: byte tokens need a vocabulary of at least 256.
const TokenSource& checked(const TokenSource& data, const LlamaConfig& model) {
  RW_USER_CHECK(data.vocab_size() <= model.vocab_size, "%s has token ids up to %d but vocab_size is %d",
                data.describe().c_str(), data.vocab_size() - 1, model.vocab_size);
  return data;
}

}  // namespace

Trainer::Trainer(const RunConfig& cfg, std::unique_ptr<TokenSource> data)
    : cfg_(cfg),
      data_(std::move(data)),
      loader_(checked(*data_, cfg.model), cfg.train.batch_size, cfg.train.seq_len, cfg.train.seed),
      model_(cfg.model, cfg.train.attn_block_q, cfg.train.attn_block_k),
      optimizer_(model_.params(), adamw_hyper(cfg.train)) {
  set_cpu_threads(cfg.train.threads);
  model_.init_weights(cfg.train.seed);
}

StepResult Trainer::step() {
  const TrainConfig& t = cfg_.train;
  const auto start = std::chrono::steady_clock::now();
  const size_t n = static_cast<size_t>(t.batch_size) * t.seq_len;
  std::vector<int32_t> inputs(n), targets(n);

  model_.zero_grad();
  double loss_sum = 0;
  for (int micro = 0; micro < t.grad_accum; ++micro) {
    loader_.fill(step_, micro, inputs.data(), targets.data());
    loss_sum += model_.forward(inputs.data(), targets.data(), t.batch_size, t.seq_len);
    model_.backward(1.0f / t.grad_accum);
  }
  ++step_;

  StepResult r;
  r.step = step_;
  r.loss = static_cast<float>(loss_sum / t.grad_accum);
  r.lr = lr_at_step(step_, t.steps, t.warmup_steps, t.lr, t.min_lr);
  r.grad_norm = global_grad_norm(model_.grad_buffer().data<float>(), model_.params().total());
  // A non-finite loss or gradient would poison the weights and the optimizer state for good; the
  // step is reported (the caller decides when to give up) but not applied.
  if (std::isfinite(r.loss) && std::isfinite(r.grad_norm)) {
    float scale = 1.0f;
    if (t.grad_clip > 0 && r.grad_norm > t.grad_clip) scale = t.grad_clip / (r.grad_norm + 1e-6f);
    optimizer_.step(model_.param_buffer().data<float>(), model_.grad_buffer().data<float>(), r.lr, scale);
  }
  r.tokens = static_cast<int64_t>(n) * t.grad_accum;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

double Trainer::flops_per_token() const {
  const LlamaConfig& m = cfg_.model;
  // Every matrix but the embedding lookup is a matmul weight: 2 FLOPs per weight and token forward,
  // 4 backward. A tied embedding is the LM head's matmul too.
  double matmul_params = 0;
  for (const ParamInfo& p : model_.params().entries())
    if (p.shape.size() == 2 && (p.name != "model.embed_tokens.weight" || m.tied_embeddings)) matmul_params += p.numel();
  // Attention scores and weighted values: 4*T*H*D per token per layer forward, halved by the
  // causal mask, times three for forward + backward.
  double attention = 6.0 * m.n_layers * m.n_heads * m.head_dim() * cfg_.train.seq_len;
  return 6.0 * matmul_params + attention;
}

}  // namespace rw
