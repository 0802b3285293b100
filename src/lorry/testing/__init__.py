"""Test helpers shipped with lorry: a deterministic image builder, registry fixtures, fakes.

Production code never imports this package (an import-linter contract checks it).
"""
