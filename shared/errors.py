"""User-facing errors: the CLI prints their message in one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (config, data, checkpoint, arguments). Exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    pass


class DatasetError(UserError):
    pass


class CheckpointError(UserError):
    pass


class TrainingDivergedError(UserError):
    """A non-finite loss or reward stopped training; the last good checkpoint is untouched."""

    exit_code = 3


class EnvironmentFailedError(UserError):
    """An environment (or its worker process) died; checkpoints are kept, rerunning resumes."""

    exit_code = 4
