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
# Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/): every colour in the figures is one of
# these or a grey. Yellow is left out: it does not show on white.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
_KIND_PALETTE = ("orange", "vermillion", "bluish green", "reddish purple")  # by the kind's place: none is the
# teacher's, the distilled student's or int8's colour, which share their figures (accuracy against latency, size)

MODELS = {
    "teacher": "teacher",
    "student_init": "student (copied layers only)",   # notebook 01's copy of every other layer, never trained
    "student_distilled": "student (distilled)",       # notebook 02's student
    "student_mlm": "student (masked LM only)",        # notebook 02's control: the same run without the teacher
    "student_task_kd": "student (distilled) + task KD",  # the paper's DistilBERT (D)
    "distilbert_released": "DistilBERT (released)",   # distilbert/distilbert-base-uncased, a reference row in t4
    "student_int8": "student (distilled), int8",      # notebook 05: dynamic int8 quantization
    **{sid: f"{CLASSIC_KINDS[k]}, {n} layer{'s' if n > 1 else ''}" for sid, (k, n) in CLASSIC_IDS.items()},
}
COLORS = {  # one colour per model id in every figure of the course (kd.figures); a kind of classic student, one
    "teacher": "#000000", "student_distilled": OKABE_ITO["blue"], "student_init": OKABE_ITO["vermillion"],
    "student_task_kd": OKABE_ITO["bluish green"], "student_mlm": "#999999",  # the control: grey
    "distilbert_released": OKABE_ITO["reddish purple"], "student_int8": OKABE_ITO["sky blue"],  # a paler student
    "student_full_copy": "#555555",
    **{sid: OKABE_ITO[_KIND_PALETTE[list(CLASSIC_KINDS).index(k) % len(_KIND_PALETTE)]]
       for sid, (k, _) in CLASSIC_IDS.items()},
    "ablation_triple": OKABE_ITO["blue"], "ablation_other": "#BBBBBB", "baseline": OKABE_ITO["orange"],
}
# Markers: a classic student's depth is its shape, filled when distilled, hollow when trained alone; the
# DistilBERT half's models in the same figures have shapes of their own
DEPTH_MARKERS = {1: "o", 2: "s"}
MARKERS = {"teacher": "*", "student_distilled": "D", "student_int8": "d"}
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

