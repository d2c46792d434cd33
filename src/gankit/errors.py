"""The one exception type for a user's mistake.

A `GankitError` carries a single line that says what was wrong, where, and what would be
accepted. The CLI prints it without a traceback and exits with status 2; any other exception
is our bug and keeps its traceback.
"""


class GankitError(Exception):
    """A user's mistake: bad config, bad data, bad flag, unusable checkpoint."""
