"""Tracking URIs that every process on a node reads the same way."""

from __future__ import annotations

from pathlib import Path

SQLITE = "sqlite:///"


def resolve_tracking_uri(uri: str, root: Path | None = None) -> str:
    """A relative `sqlite:///file.db` made absolute against `root` (the working directory by
    default), so trials, workers and the launcher agree; other URIs unchanged."""
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/"):
        return SQLITE + str(((root or Path()) / uri[len(SQLITE) :]).resolve())
    return uri
