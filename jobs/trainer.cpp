#include "jobs/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/cpu_threads.h"
#include "dist/expert_parallel.h"
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
      // Both dp and ep split the batch (dist/expert_parallel.h); an ep group's rows are consecutive.
      loader_(checked(*data_, cfg.model), cfg.train.batch_size, cfg.train.seq_len, cfg.train.seed,
              grid_.coord().dp * cfg.parallel.ep + grid_.coord().ep, cfg.parallel.dp * cfg.parallel.ep,
              parse_window_order(cfg.train.data_order), cfg.train.grad_accum),
      prefetcher_(loader_, cfg.train.grad_accum),
      model_(cfg.model, cfg.train.attn_block_q, cfg.train.attn_block_k, &grid_.tp(), &grid_.ep()),
      optimizer_(model_.params(), adamw_hyper(cfg.train)),
      dp_(grid_, model_.params(), model_.param_buffer(), model_.grad_buffer(), adamw_hyper(cfg.train),
          dp_options(cfg.parallel)),
      val_data_(std::move(val_data)) {
  if (val_data_)
    val_loader_ = std::make_unique<BatchLoader>(checked(*val_data_, cfg.model), cfg.train.batch_size, cfg.train.seq_len,
                                                cfg.train.seed, grid_.coord().dp * cfg.parallel.ep + grid_.coord().ep,
                                                cfg.parallel.dp * cfg.parallel.ep);
  set_cpu_threads(cfg.train.threads);
  model_.init_weights(cfg.train.seed);
  model_.set_bpt_block(cfg.train.bpt_block);
  if (grid_.sizes().tp > 1 || grid_.sizes().ep > 1) {
    logical_ = std::make_unique<LogicalState>();
    const int held = cfg.model.moe_experts / grid_.sizes().ep, first = grid_.coord().ep * held;
    for (const ParamInfo& p : model_.params().entries()) {
      if (!is_expert_param(p.name)) {
        logical_->table.add(p.name, p.shape, p.decay);
        continue;
      }
      // Every expert of the layer, in expert order, where this rank's first expert sits.
      const std::string tag = ".experts." + std::to_string(first) + ".";
      const size_t at = p.name.find(tag);
      for (int e = 0; e < cfg.model.moe_experts && at != std::string::npos; ++e)
        logical_->table.add(p.name.substr(0, at) + ".experts." + std::to_string(e) + "." +
                                p.name.substr(at + tag.size()),
                            p.shape, p.decay);
    }
    for (auto* v : {&logical_->params, &logical_->exp_avg, &logical_->exp_avg_sq}) v->assign(logical_->table.total(), 0);
  }
  if (grid_.sizes().cp > 1) {
    if (cfg.parallel.cp_algo == "ulysses")
      cp_attention_ = std::make_unique<UlyssesAttention>(grid_.cp());
    else
      cp_attention_ = std::make_unique<RingAttention>(grid_.cp());
    model_.set_context_parallel(cp_attention_.get());
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
  double moe_sums[2] = {0, 0};  // aux loss, dropped assignments
  for (int micro = 0; micro < t.grad_accum; ++micro) {
    std::copy_n(batch.inputs.begin() + micro * n, n, inputs.begin());
    std::copy_n(batch.targets.begin() + micro * n, n, targets.begin());
    // The model's loss is a mean over this rank's counted targets; weighting it by the rank's share
    // of the global count makes the dp sum of gradients exactly those of the global batch's mean.
    const double local = counted_targets(targets);
    double global = local;
    dp.allreduce(&global, 1);
    grid_.ep().allreduce(&global, 1);
    const double share = global > 0 ? local / global : 0.0;
    loss_sum += share * forward_batch(inputs, targets);
    moe_sums[0] += model_.moe_aux_loss();
    moe_sums[1] += static_cast<double>(model_.moe_dropped());
    // Buckets start reducing (over dp, cp and ep) during the last micro-batch's backward, when this
    // rank's gradients are complete.
    LlamaModel::GradsFinalHook on_final;
    if (micro + 1 == t.grad_accum)
      on_final = [this](size_t offset) { dp_.grads_final_from(offset); };
    model_.backward(static_cast<float>(share / t.grad_accum), on_final);
  }
  dp.allreduce(&loss_sum, 1);
  grid_.ep().allreduce(&loss_sum, 1);
  ++step_;

  StepResult r;
  if (cfg_.model.moe_experts > 0) {
    dp.allreduce(moe_sums, 2);
    r.moe_aux_loss = moe_sums[0] / (static_cast<double>(t.grad_accum) * dp.size());
    r.moe_dropped = static_cast<long long>(moe_sums[1]);
  }
  r.step = step_;
  r.loss = static_cast<float>(loss_sum / t.grad_accum);
  r.lr = lr_at_step(step_, t.steps, t.warmup_steps, t.lr, t.min_lr);
  r.grad_norm = dp_.reduce_grads();  // over the whole grid (dist/data_parallel.h)
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
  r.tokens = static_cast<int64_t>(n) * t.grad_accum * dp.size() * grid_.sizes().ep;
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
  grid_.ep().allreduce(&loss_sum, 1);
  return static_cast<float>(loss_sum / (static_cast<double>(t.val_batches) * dp.size() * grid_.sizes().ep));
}

void Trainer::gather_optimizer_state() {
  if (dp_.zero1())
    optimizer_.set_steps_taken(
        dp_.gather_zero1_state(optimizer_.exp_avg().data<float>(), optimizer_.exp_avg_sq().data<float>()));
  if (!logical_) return;
  Communicator& tp = grid_.tp();
  const float* local[] = {model_.param_buffer().data<float>(), optimizer_.exp_avg().data<float>(),
                          optimizer_.exp_avg_sq().data<float>()};
  float* logical[] = {logical_->params.data(), logical_->exp_avg.data(), logical_->exp_avg_sq.data()};
  std::vector<float> shards;
  for (const ParamInfo& p : model_.params().entries()) {
    const size_t to = logical_->table.at(p.name).offset;
    for (int k = 0; k < 3; ++k) {
      if (!p.split()) {  // the same on every tp rank
        std::copy_n(local[k] + p.offset, p.numel(), logical[k] + to);
        continue;
      }
      shards.resize(p.numel() * tp.size());
      tp.allgather(local[k] + p.offset, shards.data(), p.numel());
      assemble_shards(p, shards.data(), logical[k] + to);
    }
  }
  if (grid_.sizes().ep > 1) gather_experts();
}

void Trainer::gather_experts() {
  Communicator& ep = grid_.ep();
  const int held = cfg_.model.moe_experts / ep.size();
  float* logical[] = {logical_->params.data(), logical_->exp_avg.data(), logical_->exp_avg_sq.data()};
  for (const ParamInfo& p : logical_->table.entries()) {
    if (!is_expert_param(p.name)) continue;  // replicated: the same on every ep rank
    const int expert = std::stoi(p.name.substr(p.name.find(".experts.") + 9));
    for (int k = 0; k < 3; ++k) ep.broadcast(logical[k] + p.offset, p.numel() * sizeof(float), expert / held);
  }
}

void Trainer::shard_logical_state() {
  RW_CHECK(logical_ != nullptr, "shard_logical_state() without tensor parallelism");
  float* local[] = {model_.param_buffer().data<float>(), optimizer_.exp_avg().data<float>(),
                    optimizer_.exp_avg_sq().data<float>()};
  const float* logical[] = {logical_->params.data(), logical_->exp_avg.data(), logical_->exp_avg_sq.data()};
  for (const ParamInfo& p : model_.params().entries())
    for (int k = 0; k < 3; ++k) slice_shard(p, logical[k] + logical_->table.at(p.name).offset, local[k] + p.offset);
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
  // A token passes through top-k of an MoE layer's experts (the table's, or all ep ranks' experts).
  double matmul_params = 0;
  for (const ParamInfo& p : (logical_ ? logical_->table : model_.params()).entries())
    if (p.shape.size() == 2 && (p.name != "model.embed_tokens.weight" || m.tied_embeddings))
      matmul_params += p.logical_numel() * (is_expert_param(p.name) ? double(m.moe_top_k) / m.moe_experts : 1.0);
  // Attention scores and weighted values: 4*T*H*D per token per layer forward, halved by the
  // causal mask, times three for forward + backward.
  double attention = 6.0 * m.n_layers * m.n_heads * m.head_dim() * cfg_.train.seq_len;
  return 6.0 * matmul_params + attention;
}

}  // namespace rw
