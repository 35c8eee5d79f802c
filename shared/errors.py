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


class WriteFailedError(UserError):
    """A file of a run could not be written (permissions, read-only file system, full disk).
    Files written before are left as they were."""

    def __init__(self, path: object, exc: BaseException) -> None:
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        super().__init__(f"cannot write {path}: {reason}")


class LogdirBusyError(UserError):
    """Another live process holds the logdir's lock."""


class RunTerminated(BaseException):
    """SIGTERM arrived: the run stops where it is, keeping what it has written. A BaseException,
    like KeyboardInterrupt, so that no `except Exception` on the way swallows it. Exit code 143
    (128 + SIGTERM, the shell's convention)."""

    exit_code = 143
