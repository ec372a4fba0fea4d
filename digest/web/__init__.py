"""Web: `digest serve`, the sign-up form and the pages behind the links in
every message: unsubscribe (RFC 8058 one-click included), preferences and
the archive."""

from digest.web.app import App, create_server, serve

__all__ = ["App", "create_server", "serve"]
