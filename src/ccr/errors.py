"""The one exception type for mistakes a user can fix.

The CLI turns it into a single red line (no traceback), so its message must name the problem and
the fix, e.g. ``corpus /x was written by a newer ccr (schema 3 > 1): upgrade with pip install -U ccr``.
"""


class CcrError(Exception):
    """A user-fixable problem; the message is shown as-is, on one line."""
