"""Errors a user can meet: each carries a sentence naming what failed and what to do."""


class TonghopError(Exception):
    """Base of every error the CLI turns into a one-line message and a non-zero exit."""

    exit_code = 2


class ConfigError(TonghopError):
    """A tenant file is missing, unreadable or does not match the schema."""


class SourceError(TonghopError):
    """A source could not be read (missing file, unreadable workbook, bad header...)."""

    def __init__(self, source: str, location: str, problem: str, fix: str):
        self.source, self.location, self.problem, self.fix = source, location, problem, fix
        super().__init__(f"source '{source}' ({location}): {problem} — {fix}")


class ValidationBlocked(TonghopError):
    """A blocking expectation failed: the batch is not promoted and the snapshot keeps serving."""

    exit_code = 3


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when empty), cut to `limit` characters:
    what goes into a one-line error for the data engineer."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]
