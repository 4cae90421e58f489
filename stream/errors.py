"""Errors the CLI turns into one clear line and a non-zero exit."""


class InputError(Exception):
    """The input (file, URL or its content) cannot be used; the message says why, in one line."""


class OutputError(Exception):
    """The output location cannot be written; the message says why, in one line."""
