"""Apply OCI layer tars to a directory safely: fd-relative walking, whiteouts, bounded work.

Start with :mod:`lorry.rootfs.apply` (``Tree``, ``Limits``); docs/unpack.md has the rules.
"""
