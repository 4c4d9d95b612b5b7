"""One error hierarchy, so the CLI can print one clear line for any failure."""


class StreamNSTError(Exception):
    """Base class: the message is a complete sentence a user can act on."""


class CheckpointError(StreamNSTError):
    """A style checkpoint is missing, unreadable, foreign or mismatched."""


class InputError(StreamNSTError):
    """An input (image, video, option value) cannot be used."""


class OutputError(StreamNSTError):
    """An output cannot be written (exists, bad extension, disk error)."""


class WeightsError(StreamNSTError):
    """Loss-network (VGG) weights are missing or malformed."""


class DeviceError(StreamNSTError):
    """A requested device, dtype or backend is not available."""
