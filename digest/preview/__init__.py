"""Preview: `digest preview`, the editor's live preview on 127.0.0.1."""

from digest.preview.build import Built, View, build, view_for
from digest.preview.server import PreviewServer

__all__ = ["Built", "PreviewServer", "View", "build", "view_for"]
