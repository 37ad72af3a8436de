#include "jobs/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/cpu_threads.h"
#include "dist/zigzag.h"

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

DataParallelOptions dp_options(const ParallelConfig& p) {
  DataParallelOptions o;
  o.bucket_bytes = static_cast<size_t>(p.bucket_mb * (1 << 20));
  o.zero1 = p.zero == 1;
  return o;
}

double counted_targets(const std::vector<int32_t>& targets) {
  return static_cast<double>(std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; }));
}

}  // namespace

Trainer::Trainer(const RunConfig& cfg, std::unique_ptr<TokenSource> data, std::unique_ptr<TokenSource> val_data)
    : cfg_(cfg),
      data_(std::move(data)),
      grid_(ProcessGrid::create({cfg.parallel.dp, cfg.parallel.tp, cfg.parallel.cp, cfg.parallel.ep})),
      loader_(checked(*data_, cfg.model), cfg.train.batch_size, cfg.train.seq_len, cfg.train.seed,
              grid_.coord().dp, cfg.parallel.dp),
      prefetcher_(loader_, cfg.train.grad_accum),
      model_(cfg.model, cfg.train.attn_block_q, cfg.train.attn_block_k),
      optimizer_(model_.params(), adamw_hyper(cfg.train)),
      dp_(grid_.dp(), model_.params(), model_.param_buffer(), model_.grad_buffer(), adamw_hyper(cfg.train),
          dp_options(cfg.parallel)),
      ring_(grid_.cp()),
      val_data_(std::move(val_data)) {
  if (val_data_)
    val_loader_ = std::make_unique<BatchLoader>(checked(*val_data_, cfg.model), cfg.train.batch_size, cfg.train.seq_len,
                                                cfg.train.seed, grid_.coord().dp, cfg.parallel.dp);
  set_cpu_threads(cfg.train.threads);
  model_.init_weights(cfg.train.seed);
  if (grid_.sizes().cp > 1) {
    model_.set_context_parallel(&ring_);
    cp_positions_ = zigzag_positions(cfg.train.seq_len, grid_.sizes().cp, grid_.coord().cp);
  }
}

float Trainer::forward_batch(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets) {
  const TrainConfig& t = cfg_.train;
  const int P = grid_.sizes().cp, r = grid_.coord().cp;
  if (P == 1) return model_.forward(inputs.data(), targets.data(), t.batch_size, t.seq_len);
  std::vector<int32_t> local_inputs(inputs.size() / P), local_targets(targets.size() / P);
  zigzag_scatter(local_inputs.data(), inputs.data(), t.batch_size, t.seq_len, 1, P, r);
  zigzag_scatter(local_targets.data(), targets.data(), t.batch_size, t.seq_len, 1, P, r);
  return model_.forward(local_inputs.data(), local_targets.data(), t.batch_size, t.seq_len / P,
                        cp_positions_.data());
}

StepResult Trainer::step() {
  const TrainConfig& t = cfg_.train;
  const auto start = std::chrono::steady_clock::now();
  const size_t n = static_cast<size_t>(t.batch_size) * t.seq_len;
  std::vector<int32_t> inputs(n), targets(n);
  // This step's batches were read in the background during the previous step; the next step's are
  // read during this one.
  const StepBatches& batch = prefetcher_.get(step_);
  if (step_ + 1 < t.steps) prefetcher_.prefetch(step_ + 1);

  Communicator& dp = grid_.dp();
  model_.zero_grad();
  double loss_sum = 0;
  for (int micro = 0; micro < t.grad_accum; ++micro) {
    std::copy_n(batch.inputs.begin() + micro * n, n, inputs.begin());
    std::copy_n(batch.targets.begin() + micro * n, n, targets.begin());
    // The model's loss is a mean over this rank's counted targets; weighting it by the rank's share
    // of the global count makes the dp sum of gradients exactly those of the global batch's mean.
    const double local = counted_targets(targets);
    double global = local;
    dp.allreduce(&global, 1);
    const double share = global > 0 ? local / global : 0.0;
    loss_sum += share * forward_batch(inputs, targets);
    // Buckets start reducing during the last micro-batch's backward, when gradients are complete;
    // under context parallelism they are not complete before the cp sum below.
    LlamaModel::GradsFinalHook on_final;
    if (micro + 1 == t.grad_accum && grid_.sizes().cp == 1)
      on_final = [this](size_t offset) { dp_.grads_final_from(offset); };
    model_.backward(static_cast<float>(share / t.grad_accum), on_final);
  }
  // Each cp rank's gradients cover its part of the sequence only.
  if (grid_.sizes().cp > 1) grid_.cp().allreduce(model_.grad_buffer().data<float>(), model_.params().total());
  dp.allreduce(&loss_sum, 1);
  ++step_;

  StepResult r;
  r.step = step_;
  r.loss = static_cast<float>(loss_sum / t.grad_accum);
  r.lr = lr_at_step(step_, t.steps, t.warmup_steps, t.lr, t.min_lr);
  r.grad_norm = dp_.reduce_grads();
  // A non-finite loss or gradient would poison the weights and the optimizer state for good; the
  // step is reported (the caller decides when to give up) but not applied.
  if (std::isfinite(r.loss) && std::isfinite(r.grad_norm)) {
    float scale = 1.0f;
    if (t.grad_clip > 0 && r.grad_norm > t.grad_clip) scale = t.grad_clip / (r.grad_norm + 1e-6f);
    if (dp_.zero1()) {
      dp_.zero1_step(r.lr, scale);
    } else {
      optimizer_.step(model_.param_buffer().data<float>(), model_.grad_buffer().data<float>(), r.lr, scale);
    }
  }
  r.tokens = static_cast<int64_t>(n) * t.grad_accum * dp.size();
  // Nothing reads data in the background between steps (checkpoints and validation use HDF5 too).
  prefetcher_.wait();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

float Trainer::validation_loss() {
  RW_CHECK(val_loader_ != nullptr, "validation_loss() without validation data");
  const TrainConfig& t = cfg_.train;
  const size_t n = static_cast<size_t>(t.batch_size) * t.seq_len;
  std::vector<int32_t> inputs(n), targets(n);
  double loss_sum = 0;
  for (int k = 0; k < t.val_batches; ++k) {
    val_loader_->fill(k, 0, inputs.data(), targets.data());
    loss_sum += forward_batch(inputs, targets);
  }
  // Every rank's batches hold the same number of tokens, so the mean of the ranks' means is the mean.
  Communicator& dp = grid_.dp();
  dp.allreduce(&loss_sum, 1);
  return static_cast<float>(loss_sum / (static_cast<double>(t.val_batches) * dp.size()));
}

void Trainer::gather_optimizer_state() {
  if (!dp_.zero1()) return;
  optimizer_.set_steps_taken(
      dp_.gather_zero1_state(optimizer_.exp_avg().data<float>(), optimizer_.exp_avg_sq().data<float>()));
}

void Trainer::resume_at(int steps_done, int adam_step) {
  step_ = steps_done;
  optimizer_.set_steps_taken(adam_step);
  if (dp_.zero1())
    dp_.load_zero1_state(optimizer_.exp_avg().data<float>(), optimizer_.exp_avg_sq().data<float>(), adam_step);
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
