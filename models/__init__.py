"""Attention Lens models: one contract (Prediction), a registry of model families and a CLI."""

import os

# TensorFlow prints pages of C++ start-up logs otherwise; set before any family imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from models.base import AttentionModel, InputError, LensError
from models.contract import Prediction
from models.registry import available, load

__all__ = ["AttentionModel", "InputError", "LensError", "Prediction", "available", "load"]
