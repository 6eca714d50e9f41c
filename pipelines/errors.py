"""Errors a user can meet: each carries a sentence naming what failed and what to do.

Every message is redacted when the error is made (`pipelines.redact`): whatever prints, logs or stores it
later (the CLI, Airflow's task log, runs.jsonl, meta tables) never sees a secret.
"""

from pipelines.redact import redact


class TonghopError(Exception):
    """Base of every error the CLI turns into a one-line message and a non-zero exit."""

    exit_code = 2

    def __init__(self, *args: object):
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(TonghopError):
    """A tenant file is missing, unreadable or does not match the schema."""


class SourceError(TonghopError):
    """A source could not be read (missing file, unreadable workbook, bad header...)."""

    def __init__(self, source: str, location: str, problem: str, fix: str):
        self.source, self.location, self.problem, self.fix = source, redact(location), redact(problem), fix
        super().__init__(f"source '{source}' ({self.location}): {self.problem} — {fix}")


class TransformError(TonghopError):
    """A staging/mart model could not be built from the promoted data: nothing was changed."""

    exit_code = 1


class ValidationBlocked(TonghopError):
    """A blocking expectation failed: the batch is not promoted and the snapshot keeps serving."""

    exit_code = 3


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when empty), cut to `limit` characters:
    what goes into a one-line error for the data engineer. Redacted (a driver's error may quote its DSN)."""
    return redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:limit]
