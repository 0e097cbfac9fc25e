"""CLIP model family behind a registry."""

from .clip import CLIP, CLIPConfig, ImageEncoder, TextConfig, TextEncoder, VisionConfig, count_parameters
from .registry import create_model, list_models, model_config, register_model

__all__ = ["CLIP", "CLIPConfig", "ImageEncoder", "TextConfig", "TextEncoder", "VisionConfig", "count_parameters",
           "create_model", "list_models", "model_config", "register_model"]
