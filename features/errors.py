"""The one exception type for mistakes a user can cause and fix."""


class UserError(Exception):
    """A problem with the user's input (path, file, labels, options).

    The CLI prints ``str(err)`` as a single line, without a traceback, and exits
    non-zero. The message names the file involved and says how to fix it.
    """


def one_line(text: object) -> str:
    """Error text on one line (HDF5 messages break after the time stamp): what the CLI prints."""
    return " ".join(str(text).split())


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
