"""Regression metrics of predicted against true values: Kendall tau (scipy), R² (scikit-learn), L1."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import kendalltau
from sklearn.metrics import r2_score


def regression_metrics(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Kendall tau, R² and mean absolute error of predictions (NaN where undefined: fewer than 2 values, or
    a constant prediction's tau)."""
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant prediction: scipy warns and returns NaN
        tau = float(kendalltau(predicted, true).statistic) if len(true) > 1 else math.nan
    r2 = float(r2_score(true, predicted)) if len(true) > 1 else math.nan
    return {"tau": tau, "r2": r2, "l1": float(np.abs(predicted - true).mean())}
