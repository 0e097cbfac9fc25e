"""One error family for the whole SDK.

Library code raises these; only the CLI turns them into exit codes and friendly messages.
Every message names the problem and, where there is one, the fix.
"""

from __future__ import annotations


class SdkError(Exception):
    """Base class of every error the SDK raises on purpose."""


class ConfigError(SdkError, ValueError):
    """A config value is invalid (unknown model name, out-of-range option, ...)."""


class CheckpointError(SdkError):
    """A checkpoint cannot be loaded: missing, corrupt, or not matching the architecture."""


class DataError(SdkError):
    """Input data is unusable: unreadable image, empty calibration folder, wrong shape, ..."""


class ImageError(DataError):
    """One image cannot be used: missing, unreadable, empty, not an image, truncated or damaged, or
    over PIL's decompression-bomb limit. `path` names the file, `reason` says what is wrong in words
    (folder readers log it when they skip the file), `fix` what to do."""

    def __init__(self, path, reason: str, fix: str = ""):
        self.path, self.reason, self.fix = str(path), reason, fix
        super().__init__(f"cannot read image {path}: {reason}" + (f"; {fix}" if fix else ""))

    def __reduce__(self):  # picklable (data-loader workers) although __init__ takes three arguments
        return type(self), (self.path, self.reason, self.fix)


class ConversionError(SdkError):
    """A converter failed; the message names the failing op or step."""


class BackendMissing(ConfigError):
    """A platform's backend package is not installed; the message gives the pip command."""
