"""Ids in the data, labels in one place.

Run records, tables and figures key every model, ablation row, task and metric by a stable id; this is the one
map from id to what a reader sees. The notebooks, kd.tables, the report and the poster all print through it, so
renaming a model is one line here. Other people's numbers (papers, earlier projects) live here too, labelled as
references wherever they appear. Nothing here imports torch.
"""
from .config import LOSS_TERMS

# Notebook 04's small students: kind -> what a reader sees (kd.students builds them), in every depth. A new kind is
# one line here (and its branch in kd.students.SmallStudent); its ids, labels and colour follow.
CLASSIC_KINDS = {"bilstm": "BiLSTM", "bigru": "BiGRU", "attention": "Attention", "transformer": "Transformer"}
CLASSIC_DEPTHS = (1, 2)
CLASSIC_IDS = {f"{kind}-{n}": (kind, n) for kind in CLASSIC_KINDS for n in CLASSIC_DEPTHS}  # id -> (kind, layers)
_KIND_PALETTE = ("#d62728", "#8c564b", "#e377c2", "#bcbd22", "#e7ba52", "#637939")  # by the kind's place

MODELS = {
    "teacher": "teacher",
    "student_init": "student (no distillation)",      # notebook 01's copy of every other layer
    "student_distilled": "student (distilled)",       # notebook 02's student
    "student_mlm": "student (masked LM only)",        # notebook 02's control: the same run without the teacher
    "student_task_kd": "student (distilled) + task KD",  # the paper's DistilBERT (D)
    "distilbert_released": "DistilBERT (released)",   # distilbert/distilbert-base-uncased, a reference row in t4
    "student_int8": "student (distilled), int8",      # notebook 05: dynamic int8 quantization
    **{sid: f"{CLASSIC_KINDS[k]}, {n} layer{'s' if n > 1 else ''}" for sid, (k, n) in CLASSIC_IDS.items()},
}
COLORS = {  # one colour per model id in every figure of the course (kd.figures); matplotlib's tab10 where it can
    "teacher": "#222222", "student_distilled": "#1f77b4", "student_init": "#ff7f0e", "student_task_kd": "#2ca02c",
    "student_mlm": "#8c8c8c",
    "distilbert_released": "#9467bd", "student_int8": "#17becf", "student_full_copy": "#7f7f7f",
    **{sid: _KIND_PALETTE[list(CLASSIC_KINDS).index(k) % len(_KIND_PALETTE)] for sid, (k, _) in CLASSIC_IDS.items()},
    "ablation_triple": "#1f77b4", "ablation_other": "#aec7e8",
}
# Figure text in points, on figures at most 7.2 in wide. In the report (text width 16.6 cm = 6.5 in, body 10.5 pt)
# 16 pt prints at 14.5 pt or more; on the poster (columns of 9.6 in and more, body 26 pt) at 21 pt or more (82%)
FIGURE_FONT = 16
ABLATIONS = {"triple": "triple loss",  # notebook 02: the paper's Table 4 at our scale (kd.ABLATION_ROWS)
             **{f"no_{t}": f"− L_{t} (no {what})" for t, what in LOSS_TERMS.items()}, "random_init": "random init"}
TASKS = {"cola": "CoLA", "mrpc": "MRPC", "imdb": "IMDb"}
METRICS = {"matthews_correlation": "MCC", "f1_acc_mean": "(F1+acc)/2", "accuracy": "acc", "f1": "F1"}

REFERENCES = {  # not ours: other people's numbers, always printed with "reference"
    "paper_scores": {  # Sanh et al. 2019 (arXiv:1910.01108), Tables 1-2: dev scores x100, IMDb test accuracy
        "source": "Sanh et al. 2019, DistilBERT, Tables 1-2",
        "BERT-base (paper)": {"cola": 56.3, "mrpc": 88.6, "imdb": 93.46},
        "DistilBERT (paper)": {"cola": 51.3, "mrpc": 87.5, "imdb": 92.82}},
    "paper_size_speed": {"source": "Sanh et al. 2019, DistilBERT, Table 3",
                         "params_millions": {"BERT-base": 110, "DistilBERT": 66},
                         "cpu_inference_seconds": {"BERT-base": 668, "DistilBERT": 410}},
    "earlier_course": {"source": "an earlier course reproduction on Colab (bert-base teacher)",
                       "label": "earlier Colab reproduction",
                       "mean_retention_percent": 94.35},
    "earlier_demo": {"source": "an earlier demo of Tang et al. on IMDb (BERT teacher, 128 tokens)",
                     "teacher": 86.79, "single": [74.9, 80.1], "distilled": [79.3, 81.4]},
}
ALL = {"models": MODELS, "classic_kinds": CLASSIC_KINDS, "ablations": ABLATIONS, "tasks": TASKS, "metrics": METRICS}

