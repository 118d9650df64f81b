"""The one exception type for problems a user can fix: bad input, bad flags, bad files."""


class RnnlabError(Exception):
    """A problem with the user's input, stated in one line with what to do about it.

    The CLI prints the message (no traceback) and exits with code 2; library callers can catch it.
    """
