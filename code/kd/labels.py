"""Ids in the data, labels in one place.

Run records, tables and figures key every model, ablation row, task and metric by a stable id; this is the one
map from id to what a reader sees. The notebooks, kd.tables, the report and the poster all print through it, so
renaming a model is one line here. Other people's numbers (papers, earlier projects) live here too, labelled as
references wherever they appear. Nothing here imports torch.
"""

MODELS = {
    "teacher": "teacher",
    "student_init": "student (no distillation)",      # notebook 01's copy of every other layer
    "student_distilled": "student (distilled)",       # notebook 02's student
    "student_mlm": "student (masked LM only)",        # notebook 02's control: the same run without the teacher
    "student_task_kd": "student (distilled) + task KD",  # the paper's DistilBERT (D)
    "distilbert_released": "DistilBERT (released)",   # distilbert/distilbert-base-uncased, a reference row in t4
    "student_int8": "student (distilled), int8",      # notebook 05: dynamic int8 quantization
    "bilstm-1": "BiLSTM, 1 layer", "bilstm-2": "BiLSTM, 2 layers",
    "bigru-1": "BiGRU, 1 layer", "bigru-2": "BiGRU, 2 layers",
    "attention-1": "Attention, 1 layer", "attention-2": "Attention, 2 layers",
    "transformer-1": "Transformer, 1 layer", "transformer-2": "Transformer, 2 layers",
}
COLORS = {  # one colour per model id in every figure of the course (kd.figures); matplotlib's tab10 where it can
    "teacher": "#222222", "student_distilled": "#1f77b4", "student_init": "#ff7f0e", "student_task_kd": "#2ca02c",
    "student_mlm": "#8c8c8c",
    "distilbert_released": "#9467bd", "student_int8": "#17becf", "student_full_copy": "#7f7f7f",
    "bilstm-1": "#d62728", "bilstm-2": "#d62728", "bigru-1": "#8c564b", "bigru-2": "#8c564b",
    "attention-1": "#e377c2", "attention-2": "#e377c2", "transformer-1": "#bcbd22", "transformer-2": "#bcbd22",
    "ablation_triple": "#1f77b4", "ablation_other": "#aec7e8",
}
# Figure text in points, on figures at most 7.2 in wide. In the report (text width 16.6 cm = 6.5 in, body 10.5 pt)
# 16 pt prints at 14.5 pt or more; on the poster (columns of 9.6 in and more, body 26 pt) at 21 pt or more (82%)
FIGURE_FONT = 16
CLASSIC_KINDS = {"bilstm": "BiLSTM", "bigru": "BiGRU", "attention": "Attention", "transformer": "Transformer"}
ABLATIONS = {  # notebook 02: the paper's Table 4 at our scale
    "triple": "triple loss",
    "no_ce": "− L_ce (no soft targets)",
    "no_mlm": "− L_mlm",
    "no_cos": "− L_cos",
    "random_init": "random init",
}
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

