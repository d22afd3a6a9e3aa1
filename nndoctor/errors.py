"""The one exception type that means "the user's input cannot be used" (exit code 2)."""


class InputError(Exception):
    """Bad input: a missing file, a model file without a model, a broken dataset or config.

    The message is shown to the user as is, as one paragraph that names the file and says what
    to change; the CLI prints it without a traceback (unless --debug) and exits with code 2.
    """
