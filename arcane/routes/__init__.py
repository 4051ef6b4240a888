"""HTTP blueprints: the JSON API, the legacy routes of the original game, and the pages."""
