"""cas-glance: an OpenStack Glance v2 compatible image service on deduplicated chunk storage."""

__version__ = "0.1.0"
