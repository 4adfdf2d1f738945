"""Errors a user can fix. The entry point prints them as one line and exits with status 2;
anything else is a bug and keeps its traceback."""


class GanLabError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class Refused(GanLabError):
    """A run refused before it began (another process writes its folder, a checkpoint that
    cannot be resumed, a deleted MLflow experiment): nothing is recorded, since the record would
    be a new run beside the one that the folder names, or a write into another process's."""


class ConfigError(GanLabError):
    """A config value that is out of range, of the wrong type, or inconsistent with another."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


def require(ok: bool, key: str, value: object, allowed: str) -> None:
    """The config checks' one form: ConfigError(key, value, allowed) unless `ok`."""
    if not ok:
        raise ConfigError(key, value, allowed)


def first_line(text: object) -> str:
    """The first non-blank line of a message (an exception or a text), '' when there is none:
    how errors of other libraries become gan_lab's one-line messages."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def require_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    require(value in choices, key, value, "choose one of " + ", ".join(choices))


class DataError(GanLabError):
    """A data set that is missing, empty or unreadable."""


class RunDiverged(GanLabError):
    """A loss became NaN or infinite."""


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler's time limit or preemption, `docker stop`, Kubernetes): like
    KeyboardInterrupt, it ends the process once the run is recorded."""
