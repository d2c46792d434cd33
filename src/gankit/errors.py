"""The one exception type for a user's mistake.

A `GankitError` carries a single line that says what was wrong, where, and what would be
accepted. The CLI prints it without a traceback and exits with status 2; any other exception
is our bug and keeps its traceback.
"""


class GankitError(Exception):
    """A user's mistake: bad config, bad data, bad flag, unusable checkpoint."""


def warn(msg: str) -> None:
    """A one-line notice on stderr for something the user should know but that is not an error
    (a damaged checkpoint skipped, a stale lock taken over, a rollback)."""
    import sys

    print(f"gankit: {msg}", file=sys.stderr)
