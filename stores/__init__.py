"""Blob stores: where chunk blobs live (filesystem, S3, Swift, memory).

Nothing above this package imports boto3 or swiftclient; every backend turns its client's
errors into the tree in `stores.errors`.
"""
from stores.base import BlobInfo, BlobStore, Capabilities
from stores.errors import BlobNotFound, StorageFull, StoreError, StoreUnavailable

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Capabilities",
    "StorageFull",
    "StoreError",
    "StoreUnavailable",
]
