"""`policyhistory serve`: the HTTP API under /v1 and the pages for people, over the same store and engine."""

from .app import create_app, from_environment
from .settings import Settings

__all__ = ["Settings", "create_app", "from_environment"]
