"""The city's web service: what government portals call over HTTP (docs/service-tokens.md)."""
