"""One exception family for everything a user can get wrong.

The CLI maps these to exit codes in one place (edgecnn/cli.py): a failed cross-check is 1,
every other EdgecnnError is 2. Library code raises; it never prints or exits.
Messages say what, where (file, layer or tensor) and what to do.
"""


class EdgecnnError(Exception):
    """Base class: a clear, one-line, user-facing error."""

    exit_code = 2


class InputFileError(EdgecnnError):
    """A file is missing, unreadable, or would be overwritten without --force."""


class ModelFormatError(EdgecnnError):
    """A model file is not what it claims to be, or is corrupt."""


class UnsafePickleError(ModelFormatError):
    """A pickle asks for a global outside the allowlist or an opcode we refuse."""


class UnsupportedOpError(EdgecnnError):
    """An op, layer type or option edgecnn does not implement."""


class ArchitectureError(EdgecnnError):
    """Weights do not fit the architecture (--arch, a spec file or a pickled module)."""


class ImageError(EdgecnnError):
    """An image cannot be decoded or converted to what the model expects."""


class CalibrationError(EdgecnnError):
    """Calibration data is missing or unusable."""


class MismatchError(EdgecnnError):
    """A cross-check found a difference beyond the contract."""

    exit_code = 1


class UsageError(EdgecnnError):
    """A call or command line that cannot work as given (bad option, wrong input shape)."""


class EdgecnnWarning(UserWarning):
    """The work was done, but maybe not as the user meant: the CLI prints 'warning: ...'."""


class CalibrationWarning(EdgecnnWarning):
    """Calibration ran on data that may give poor int8 ranges (too few images, wrong colour)."""


class DefaultsWarning(EdgecnnWarning):
    """edgecnn chose a setting the user did not give (input size, ImageNet preprocessing)."""
