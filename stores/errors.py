"""One error tree for every blob store.

Backends raise these with `raise ... from exc`, so callers never see botocore, swiftclient or
OSError details unless they look at `__cause__`.
"""


class StoreError(Exception):
    """A blob store operation failed in a way that is not one of the kinds below."""


class BlobNotFound(StoreError):
    """The key is not in the store."""


class StoreUnavailable(StoreError):
    """The backend could not be reached or answered with a transient failure (retryable)."""


class StorageFull(StoreError):
    """The backend is out of space or over quota (not retryable)."""
