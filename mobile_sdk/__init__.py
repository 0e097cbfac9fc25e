"""mobile-sdk: compress a CLIP-style vision-language model and ship it to phones, with proven parity.

Public API (everything else is internal and may change): `load_model`, `export` and
`check_parity` (mobile_sdk.api: the command line's jobs as functions returning objects), the model
contract (`DualEncoder`, `Tower`, `Preprocess`, `as_adapter`, `register_source`), checkpoints,
preprocessing, the tokenizer and the error types.
"""

from .api import ParityReport, check_parity, export, load_model
from .checkpoint import default_checkpoint, load_checkpoint, save_checkpoint
from .errors import BackendMissing, CheckpointError, ConfigError, ConversionError, DataError, ImageError, SdkError
from .models import CLIP, CLIPConfig, count_parameters, create_model, list_models, register_model
from .models.adapter import DualEncoder, PixelNorm, Preprocess, Tower, as_adapter
from .models.sources import list_sources, load_adapter, register_source
from .preprocess import load_image, preprocess_image
from .tokenizer import Tokenizer

__version__ = "0.1.0"

__all__ = [
    "BackendMissing", "CLIP", "CLIPConfig", "CheckpointError", "ConfigError", "ConversionError", "DataError",
    "DualEncoder", "ImageError", "ParityReport", "check_parity", "export", "load_model",
    "PixelNorm", "Preprocess", "SdkError", "Tokenizer", "Tower", "as_adapter", "count_parameters", "create_model",
    "default_checkpoint", "list_models", "list_sources", "load_adapter", "load_checkpoint", "load_image",
    "preprocess_image", "register_model", "register_source", "save_checkpoint",
]
