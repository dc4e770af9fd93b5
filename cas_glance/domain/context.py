"""Who is asking: the request context every domain rule is evaluated against.

Invariants: a context is immutable; ``is_admin`` alone decides admin powers (roles are kept for
policy decisions the API may add later); ``project_id`` None means "no project" (Glance noauth),
so images it creates have ``owner: null`` and it owns no image.
"""
from __future__ import annotations

from dataclasses import dataclass

from cas_glance.domain.types import Record


@dataclass(frozen=True)
class RequestContext:
    """The caller's identity as the auth layer established it."""

    project_id: str | None = None
    user_id: str | None = None
    roles: tuple[str, ...] = ("admin",)
    is_admin: bool = True

    @classmethod
    def admin(cls) -> RequestContext:
        """The noauth default: an admin with no project (images get ``owner: null``)."""
        return cls()

    def owns(self, record: Record) -> bool:
        """True when the caller's project owns the image (never for a project-less caller)."""
        return self.project_id is not None and record.get("owner") == self.project_id
