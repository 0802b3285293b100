"""Test-suite-wide configuration: lorry's own pytest fixtures (registries, images, tokens)."""

pytest_plugins = ["lorry.testing.pytest_plugin"]
