"""The one exception type for mistakes a user can cause and fix."""


class UserError(Exception):
    """A problem with the user's input (path, file, labels, options).

    The CLI prints ``str(err)`` as a single line, without a traceback, and exits
    non-zero. The message names the file involved and says how to fix it.
    """
