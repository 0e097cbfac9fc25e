"""Per-platform converters behind one contract (see `converters.base`).

One module per platform (executorch, tflite, coreml) lands with its issue; each imports its backend
package only inside itself, so importing `converters` stays cheap.
"""

from .base import Artifact, Converter, TensorSpec

__all__ = ["Artifact", "Converter", "TensorSpec"]
