"""One exception type per concern; messages name the file, field or video at fault."""


class OmnivadError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class ConfigError(OmnivadError):
    """A configuration value is missing or invalid."""


class CorpusError(OmnivadError):
    """Corpus input or a stored corpus is invalid."""


class MetricError(OmnivadError):
    """Scores and ground truth do not match."""


class StorageError(OmnivadError):
    """A URI cannot be read or written."""


class CheckpointError(OmnivadError):
    """A stored checkpoint or model file cannot be read (the message names the file and what is wrong)."""
