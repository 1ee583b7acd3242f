"""The task metrics as `evaluate.Metric` subclasses: the library's interface, computed here, so they work offline
(`evaluate.load` fetches metric scripts from the hub). Imported on first use: `import evaluate` takes seconds.
kd.measure.task_scores computes all of them at once."""
from __future__ import annotations

import math

import datasets
import evaluate
import numpy as np


class _BinaryMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=self.__doc__, citation="", inputs_description="predictions, references: lists of 0/1 labels",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}))


class Accuracy(_BinaryMetric):
    """Fraction of predictions equal to the reference."""
    def _compute(self, predictions, references):
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}


class F1(_BinaryMetric):
    """F1 of the positive class (label 1): harmonic mean of precision and recall."""
    def _compute(self, predictions, references):
        p, r = np.asarray(predictions), np.asarray(references)
        tp = float(np.sum((p == 1) & (r == 1)))
        denominator = float(np.sum(p == 1) + np.sum(r == 1))
        return {"f1": 2 * tp / denominator if denominator else 0.0}


class MatthewsCorrelation(_BinaryMetric):
    """Matthews correlation coefficient: 0 for chance or constant predictions, 1 for perfect ones."""
    def _compute(self, predictions, references):
        p, r = np.asarray(predictions), np.asarray(references)
        tp, tn = float(np.sum((p == 1) & (r == 1))), float(np.sum((p == 0) & (r == 0)))
        fp, fn = float(np.sum((p == 1) & (r == 0))), float(np.sum((p == 0) & (r == 1)))
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return {"matthews_correlation": (tp * tn - fp * fn) / denominator if denominator else 0.0}
