"""The losses of the course, each a pure function of student and teacher outputs, with shapes in the docstring.

Notebook 02's triple loss (DistilBERT): soft targets at a temperature, masked LM, cosine of hidden states.
Notebooks 03-04's task-level loss (DistilBERT (D), Tang et al.): hard labels plus the fine-tuned teacher's soft targets.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LOSS_TERMS, DistillConfig, TaskKDConfig


def soft_target_loss(logits_s: torch.Tensor, logits_t: torch.Tensor, mask: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """KL(p_t || p_s) between softmax(logits / T) of teacher and student, times T², averaged over selected tokens.

    logits_s, logits_t: (batch, seq, vocab); mask: (batch, seq) bool, True where the token counts. Returns a scalar.
    The T² keeps the gradient's size independent of T (Hinton et al. 2015). In plain autograd this is
        F.kl_div(F.log_softmax(logits_s[mask] / T, -1), F.log_softmax(logits_t[mask] / T, -1),
                 log_target=True, reduction="batchmean") * T**2
    (a test checks the two agree); _SoftTargetKL computes the same value and gradient in one pass.
    """
    if bool(mask.all()):  # blocks of text have no padding: a view, not a copy of two vocabulary-sized tensors
        rows_s, rows_t = logits_s.flatten(0, 1), logits_t.flatten(0, 1)
    else:
        rows_s, rows_t = logits_s[mask], logits_t[mask]  # (tokens, vocab)
    return _SoftTargetKL.apply(rows_s, rows_t.detach(), temperature)


class _SoftTargetKL(torch.autograd.Function):
    """T²·KL(p_t || p_s) averaged over rows of (tokens, vocab) logits, with its gradient T·(p_s - p_t) / tokens worked
    out in the forward pass (p_s - p_t; the backward scales it), a few rows at a time. Autograd's log_softmax / kl_div
    chain reads and writes the vocabulary-sized tensors many times over and was the step's largest cost on a CPU;
    this makes one pass."""
    chunk_bytes = {"cpu": 1 << 20, "cuda": 64 << 20}  # CPU: rows that stay in cache; GPU: few, large kernels

    @staticmethod
    def forward(ctx, logits_s: torch.Tensor, logits_t: torch.Tensor, temperature: float) -> torch.Tensor:
        tokens, vocab = logits_s.shape
        chunk = _SoftTargetKL.chunk_bytes
        step = max(1, chunk.get(logits_s.device.type, chunk["cpu"]) // (4 * vocab))
        grad = torch.empty(logits_s.shape, dtype=torch.float32, device=logits_s.device)  # fp32 until the loss scale
        total = torch.zeros((), dtype=torch.float32, device=logits_s.device)
        for i in range(0, tokens, step):
            log_p_s = torch.log_softmax(logits_s[i:i + step].float() / temperature, dim=-1)  # (rows, vocab)
            log_p_t = torch.log_softmax(logits_t[i:i + step].float() / temperature, dim=-1)
            p_t = log_p_t.exp()
            total += torch.dot(p_t.view(-1), log_p_t.sub_(log_p_s).view(-1))  # sum of p_t (log p_t - log p_s)
            torch.sub(log_p_s.exp_(), p_t, out=grad[i:i + step])               # p_s - p_t
        ctx.save_for_backward(grad)
        ctx.scale, ctx.logits_dtype = temperature / max(tokens, 1), logits_s.dtype
        return total * (temperature ** 2 / max(tokens, 1))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors  # scaled in place (backward runs once), then cast: small entries survive fp16
        return grad.mul_(grad_output.float() * ctx.scale).to(ctx.logits_dtype), None, None


def masked_lm_loss(logits_s: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student on the masked tokens. logits_s: (batch, seq, vocab); labels: (batch, seq),
    -100 = ignore.
    Only the masked rows (~15%) go through the softmax: the same mean as ignore_index, at a sixth of the cost."""
    picked = labels != -100
    return F.cross_entropy(logits_s[picked].float(), labels[picked])


def cosine_loss(hidden_s: torch.Tensor, hidden_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(h_s, h_t) over selected tokens. hidden_s, hidden_t: (batch, seq, dim); mask: (batch, seq)
    bool."""
    return (1 - F.cosine_similarity(hidden_s[mask].float(), hidden_t[mask].float(), dim=-1)).mean()


# Each term of notebook 02's loss (kd.config.LOSS_TERMS) from (student outputs, teacher outputs, labels, the tokens
# that count, config): a new term is a function here, its name in LOSS_TERMS and its alpha_<name> in DistillConfig
TERMS = {
    "ce": lambda s, t, labels, mask, cfg: soft_target_loss(s.logits, t.logits, mask, cfg.temperature),
    "mlm": lambda s, t, labels, mask, cfg: masked_lm_loss(s.logits, labels),
    "cos": lambda s, t, labels, mask, cfg: cosine_loss(s.hidden_states[-1], t.hidden_states[-1], mask),
}
assert set(TERMS) == set(LOSS_TERMS), "kd.losses.TERMS and kd.config.LOSS_TERMS name the same terms"


def distillation_terms(out_s, out_t, labels: torch.Tensor, attention_mask: torch.Tensor, cfg: DistillConfig) -> dict:
    """Every unweighted term from student and teacher outputs (logits, hidden_states). labels: (batch, seq), -100 =
    not masked; the soft targets and the cosine read every real token, or the masked ones only (cfg.masked_only)."""
    mask = labels != -100 if cfg.masked_only else attention_mask.bool()
    return {name: term(out_s, out_t, labels, mask, cfg) for name, term in TERMS.items()}


def weighted_loss(terms: dict, cfg: DistillConfig) -> torch.Tensor:
    """sum over the terms of alpha_<name> x term."""
    return sum(getattr(cfg, f"alpha_{name}") * value for name, value in terms.items())


def classic_kd_loss(logits_s: torch.Tensor, logits_t: torch.Tensor, labels: torch.Tensor,
                    cfg: TaskKDConfig) -> torch.Tensor:
    """cfg.alpha * CE(labels) + (1 - cfg.alpha) * soft loss; rows labelled -1 (the unlabelled transfer set): soft loss
    only. The one way a task-level distillation config reaches its loss (kd.SoftTargetTrainer, notebooks 03-04).

    logits_s, logits_t: (batch, classes); labels: (batch,). Soft loss: T² KL at cfg.temperature over the rows, as
    soft_target_loss computes it per token, or the MSE between logits (Tang et al.) when cfg.mse.
    """
    if cfg.mse:
        soft = F.mse_loss(logits_s.float(), logits_t.float())
    else:
        soft = _SoftTargetKL.apply(logits_s, logits_t.detach(), cfg.temperature)  # rows: (batch, classes)
    labelled = labels >= 0
    hard = F.cross_entropy(logits_s[labelled].float(), labels[labelled]) if labelled.any() else logits_s.sum() * 0
    return cfg.alpha * hard + (1 - cfg.alpha) * soft
