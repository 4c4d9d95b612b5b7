"""The browser viewer served by the WebRTC output (static files)."""
