"""The one error type of the data layer: a dataset on disk that cannot be used as asked."""
from __future__ import annotations

from foundation.errors import GanasError


class DatasetError(GanasError):
    """A missing folder, an empty split, an unreadable image, a bad label map, mismatched stems.

    The message names the file or folder and says what was wrong and what is allowed; the CLI
    prints it as one line and exits with status 2.
    """
