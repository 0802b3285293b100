"""What a user sees when a pull fails at the registry (moby's translatePullError, xfer-spec §4.8).

Registry errors name the request (``fetching manifest v1 from host/app: 404 …``); the pull
puts the user's question in front: ``manifest for app:v1 not found``. The original error stays
the cause, so the CLI's one-line message still shows the registry's answer after it.
"""

from __future__ import annotations

from lorry.errors import AuthError, LorryError, NotFoundError
from lorry.reference import Reference

__all__ = ["translate_pull_error"]


def translate_pull_error(exc: LorryError, ref: Reference) -> LorryError:
    """The user-facing error for a failed manifest or tag request of ``ref``; else ``exc``."""
    codes = set(exc.codes)
    new: LorryError | None = None
    if isinstance(exc, AuthError) and (
        codes & {"DENIED", "UNAUTHORIZED"} or exc.status in (401, 403)
    ):
        new = AuthError(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may "
            "require 'lorry login'"
        )
    elif isinstance(exc, NotFoundError) and "NAME_UNKNOWN" in codes:
        new = NotFoundError(f"repository {ref.familiar_name} not found")
    elif isinstance(exc, NotFoundError) and (
        "MANIFEST_UNKNOWN" in codes or (exc.status == 404 and not codes)
    ):
        new = NotFoundError(f"manifest for {ref.familiar} not found")
    if new is None:
        return exc
    new.status, new.url, new.codes = exc.status, exc.url, exc.codes
    new.__cause__ = exc
    return new
