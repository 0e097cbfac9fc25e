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


class ConversionError(SdkError):
    """A converter failed; the message names the failing op or step."""


class BackendMissing(ConfigError):
    """A platform's backend package is not installed; the message gives the pip command."""
