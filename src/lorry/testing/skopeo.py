"""Drive ``skopeo`` as a reference peer: copy images, read raw manifests, push built layouts.

Every call runs with a clean environment — a temporary ``HOME``, an empty
``REGISTRY_AUTH_FILE`` and an empty registries.conf — so the user's credentials and mirrors
never leak into a test. TLS verification is turned off for ``docker://`` references to
127.0.0.1 and localhost, where the test registries run over plain HTTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lorry import mediatypes as mt
from lorry.errors import LorryError

if TYPE_CHECKING:
    from lorry.testing.builder import BuiltImage
    from lorry.testing.registry import RegistryServer

__all__ = [
    "SKOPEO_BINARY",
    "Creds",
    "SkopeoError",
    "layout_as_dir",
    "push_layout",
    "run_skopeo",
    "skopeo_copy",
    "skopeo_inspect_raw",
]

#: The skopeo binary the helpers run.
SKOPEO_BINARY = os.environ.get("LORRY_TEST_SKOPEO_BINARY", "/usr/bin/skopeo")
#: Credentials as ``"user:password"`` or ``(user, password)``.
Creds = str | tuple[str, str]
_TIMEOUT = 600.0
_OCI_TOP_TYPES = frozenset({mt.OCI_MANIFEST, mt.OCI_INDEX})


class SkopeoError(LorryError):
    """skopeo exited non-zero; the message holds the command and its stderr."""


def _is_local_docker(ref: str) -> bool:
    rest = ref.removeprefix("docker://")
    return ref.startswith("docker://") and rest.startswith(("127.0.0.1", "localhost", "[::1]"))


def _creds(value: Creds) -> str:
    return value if isinstance(value, str) else f"{value[0]}:{value[1]}"


def run_skopeo(args: Sequence[str], *, timeout: float = _TIMEOUT) -> bytes:
    """Run ``skopeo ARGS`` in a clean environment; return stdout or raise :class:`SkopeoError`."""
    if shutil.which(SKOPEO_BINARY) is None:
        raise SkopeoError(f"running skopeo: {SKOPEO_BINARY} is not installed")
    with tempfile.TemporaryDirectory(prefix="lorry-skopeo-") as tmp:
        auth = Path(tmp, "auth.json")
        auth.write_text('{"auths": {}}\n')
        registries = Path(tmp, "registries.conf")
        registries.write_text("")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "XDG_RUNTIME_DIR": tmp,
            "XDG_CONFIG_HOME": tmp,
            "REGISTRY_AUTH_FILE": str(auth),
            "CONTAINERS_REGISTRIES_CONF": str(registries),
        }
        cmd = [SKOPEO_BINARY, *args]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            raise SkopeoError(f"skopeo {' '.join(args)}: timed out after {timeout} s") from err
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise SkopeoError(f"skopeo {' '.join(args)}: exit {proc.returncode}: {stderr}")
    return proc.stdout


def skopeo_copy(
    src: str,
    dst: str,
    *,
    src_creds: Creds | None = None,
    dest_creds: Creds | None = None,
    extra_args: Sequence[str] = (),
) -> None:
    """``skopeo copy SRC DST`` (transport-prefixed references), with no signature policy."""
    args = ["copy", "--insecure-policy", "--quiet"]
    if _is_local_docker(src):
        args.append("--src-tls-verify=false")
    if _is_local_docker(dst):
        args.append("--dest-tls-verify=false")
    if src_creds is not None:
        args.append(f"--src-creds={_creds(src_creds)}")
    if dest_creds is not None:
        args.append(f"--dest-creds={_creds(dest_creds)}")
    run_skopeo([*args, *extra_args, src, dst])


def skopeo_inspect_raw(
    ref: str, *, creds: Creds | None = None, extra_args: Sequence[str] = ()
) -> bytes:
    """The manifest (or index) at ``ref`` exactly as stored: ``skopeo inspect --raw``."""
    args = ["inspect", "--raw"]
    if _is_local_docker(ref):
        args.append("--tls-verify=false")
    if creds is not None:
        args.append(f"--creds={_creds(creds)}")
    return run_skopeo([*args, *extra_args, ref])


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def layout_as_dir(built: BuiltImage, dest: Path) -> str:
    """Write ``built`` as a skopeo ``dir:`` image at ``dest``; return the ``dir:`` reference.

    skopeo's ``oci:`` transport only resolves OCI-typed descriptors in index.json, so images
    with Docker media types travel through ``dir:``, which keeps manifest bytes as they are.
    """
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "version").write_text("Directory Transport Version: 1.1\n")
    top = built.index_bytes if built.index_bytes is not None else built.manifest_bytes
    (dest / "manifest.json").write_bytes(top)
    for image in built.children or [built]:
        if built.index_bytes is not None:
            (dest / f"{image.manifest_digest.encoded}.manifest.json").write_bytes(
                image.manifest_bytes
            )
        for digest in [image.config_digest, *image.layer_digests]:
            target = dest / digest.encoded
            if not target.exists():
                _link_or_copy(built.blob_path(digest), target)
    return f"dir:{dest}"


def push_layout(
    built: BuiltImage,
    registry: RegistryServer,
    repo: str,
    tag: str | None = None,
    all_platforms: bool = True,
    *,
    dest_creds: Creds | None = None,
) -> str:
    """Push a built image to ``registry`` as ``repo:tag`` with digests preserved; return the ref.

    ``tag`` defaults to the built tag. A multi-platform image is pushed whole unless
    ``all_platforms`` is false, in which case only the host platform's image is pushed.
    """
    dst = f"docker://{registry.host}/{repo}:{tag or built.tag}"
    args = ["--preserve-digests"]
    if built.index_digest is not None:
        args.append("--multi-arch=all" if all_platforms else "--multi-arch=system")
    if built.top_media_type in _OCI_TOP_TYPES:
        skopeo_copy(f"oci:{built.layout}:{built.tag}", dst, dest_creds=dest_creds, extra_args=args)
        return dst
    with tempfile.TemporaryDirectory(prefix=".skopeo-dir-", dir=built.layout.parent) as tmp:
        src = layout_as_dir(built, Path(tmp))
        skopeo_copy(src, dst, dest_creds=dest_creds, extra_args=args)
    return dst
