"""The rules of The Arcane Codex. Knows nothing of transports."""
