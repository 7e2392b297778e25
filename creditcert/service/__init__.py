"""The city's web service (`creditcert serve`): pages for enterprises and reviewers, a JSON API
for portals (docs/service.md)."""
