"""lorry moves container images between OCI / Docker registries and local storage.

The package root stays import-light on purpose: import the part you need (``lorry.reference``,
``lorry.digest``, ...) so that the command line starts fast.
"""

__version__ = "0.1.0"
