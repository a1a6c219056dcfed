"""The export's own error, apart so that every export module can raise it without importing the build."""


class ExportError(RuntimeError):
    """An export that ran but failed a check (parity, spec); one-line message."""
