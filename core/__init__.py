"""The lowest layer: domain errors, money, the admin's building blocks. No models."""
