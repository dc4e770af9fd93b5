"""The domain error tree. Raised anywhere below the HTTP edge; api/errors.py maps each kind to
one Glance HTTP status, once. Nothing outside cas_glance/api raises aiohttp's HTTP errors.
"""


class CasGlanceError(Exception):
    """Base of every error the service expects and can explain to a client."""


class BadRequest(CasGlanceError):  # 400
    pass


class Forbidden(CasGlanceError):  # 403
    pass


class NotFound(CasGlanceError):  # 404
    pass


class Conflict(CasGlanceError):  # 409
    pass


class Gone(CasGlanceError):  # 410: the image was deleted while its data was uploading
    pass


class PayloadTooLarge(CasGlanceError):  # 413: image_size_cap, quotas, property/tag limits
    pass


class UnsupportedMediaType(CasGlanceError):  # 415
    pass


class RangeNotSatisfiable(CasGlanceError):  # 416
    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class InvalidTransition(Conflict):
    """The status machine has no such move (domain/status.py); the edge may map it to 403."""

    def __init__(self, status: str, event: str) -> None:
        super().__init__(f"Image status transition from {status} on {event} is not allowed")
        self.status = status
        self.event = event


class StoreFailure(CasGlanceError):
    """The blob store failed (unreachable, erroring). 503 before the request body was read,
    otherwise a 500-class error that a client must not blindly retry with a half-read body."""


class StorageFull(StoreFailure):  # 413, as Glance answers a full store
    pass


class CorruptBlob(CasGlanceError):
    """A blob's content does not match its digest, or its header is unreadable."""


class IndexMismatch(CasGlanceError):
    """The index was created with other chunker parameters or another format version."""
