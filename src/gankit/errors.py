"""The one exception type for a user's mistake.

A `GankitError` carries a single line that says what was wrong, where, and what would be
accepted. The CLI prints it without a traceback and exits with status 2; any other exception
is our bug and keeps its traceback. A `DiskError` is a `GankitError` too: not the user's mistake
but the machine's refusal (a full disk, a read-only folder), said the same way.
"""


class GankitError(Exception):
    """A user's mistake: bad config, bad data, bad flag, unusable checkpoint."""


def warn(msg: str) -> None:
    """A one-line notice on stderr for something the user should know but that is not an error
    (a damaged checkpoint skipped, a stale lock taken over, a rollback)."""
    import sys

    print(f"gankit: {msg}", file=sys.stderr)


class DiskError(GankitError):
    """The machine refused a write: no space left, a quota, a read-only file system, no
    permission, a folder on the way that is a file. One line naming the path (`gankit.disk`)."""
