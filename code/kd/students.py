"""Small students for classic task-specific distillation (notebook 04, Tang et al. 2019): the model. Their runs,
several at once: kd.student_runs."""
from __future__ import annotations


import torch
import torch.nn.functional as F
from transformers.modeling_outputs import SequenceClassifierOutput

from .labels import CLASSIC_KINDS



class SmallStudent(torch.nn.Module):
    """A small classifier over WordPiece ids: BiLSTM, BiGRU, Attention (self-attention layers) or Transformer.

    Padding never leaks in: the RNNs run on packed sequences, attention ignores padded keys, and pooling
    averages real tokens only. The attention-based kinds get learned position embeddings.
    """
    KINDS = tuple(CLASSIC_KINDS)  # kd.labels.CLASSIC_KINDS: one line there per kind, its branch here

    def __init__(self, kind: str, vocab_size: int, layers: int, dim: int, max_len: int, dropout: float = 0.2,
                 num_labels: int = 2, pad_id: int = 0, heads: int = 4, embeddings: torch.Tensor | None = None):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"Unknown student kind {kind!r}; choose from {self.KINDS}")
        self.kind = kind
        self.embed = torch.nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        if embeddings is not None:  # e.g. the teacher's word embeddings, projected to `dim`
            self.embed.weight.data.copy_(embeddings)
        self.pos = torch.nn.Embedding(max_len, dim) if kind in ("attention", "transformer") else None
        self.drop = torch.nn.Dropout(dropout)
        if kind in ("bilstm", "bigru"):
            rnn = torch.nn.LSTM if kind == "bilstm" else torch.nn.GRU
            self.encoder = rnn(dim, dim // 2, layers, batch_first=True, bidirectional=True,
                               dropout=dropout if layers > 1 else 0)
        elif kind == "attention":
            self.encoder = torch.nn.ModuleList(torch.nn.MultiheadAttention(dim, heads, dropout, batch_first=True)
                                               for _ in range(layers))
            self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(dim) for _ in range(layers))
        else:
            layer = torch.nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.classifier = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                              torch.nn.Linear(dim, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None, labels=None):
        """input_ids, attention_mask: (batch, seq) -> .logits (batch, num_labels), and .loss (cross-entropy) given
        labels.
        One segment only: token_type_ids are accepted and ignored."""
        x = self.embed(input_ids)  # (batch, seq, dim)
        if self.pos is not None:
            x = x + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        x = self.drop(x)
        pad = attention_mask == 0
        if self.kind in ("bilstm", "bigru"):
            lengths = attention_mask.sum(1).clamp_min(1).cpu()
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.encoder(packed)
            x, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        elif self.kind == "attention":
            for attn, norm in zip(self.encoder, self.norms):
                x = norm(x + self.drop(attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]))
        else:
            x = self.encoder(x, src_key_padding_mask=pad)
        keep = attention_mask.unsqueeze(-1).to(x.dtype)  # (batch, seq, 1): masked mean pooling
        pooled = (x * keep).sum(1) / keep.sum(1).clamp_min(1)
        logits = self.classifier(self.drop(pooled))
        return SequenceClassifierOutput(loss=None if labels is None else F.cross_entropy(logits, labels), logits=logits)


def projected_embeddings(weight: torch.Tensor, dim: int, seed: int = 0) -> torch.Tensor:
    """The teacher's word embeddings (vocab, d_t) projected on their top `dim` principal components, scaled to std 1.
    The randomised PCA draws from its own seed: the same embeddings whatever ran before (a cache hit or a miss)."""
    centred = weight.float() - weight.float().mean(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(centred, q=dim, center=False, niter=4)
    out = centred @ v  # (vocab, dim)
    return out / out.std()


def make_student(profile, kind: str, layers: int, vocab_size: int, pad_id: int = 0,
                 embeddings: torch.Tensor | None = None, seed: int | None = None) -> SmallStudent:
    """The profile's classic student of one kind and depth (notebook 04 trains it, notebook 05 sizes it): width
    classic_dim, positions for classic_max_len tokens and 32 spare, initialised from `seed` (default: the profile's)."""
    torch.manual_seed(profile.seed if seed is None else seed)
    return SmallStudent(kind, vocab_size, layers, profile.classic_dim, profile.classic_max_len + 32, pad_id=pad_id,
                        embeddings=embeddings)
