"""Hostile documents cost nothing but their own bytes (issue 16, item 5; JSON depth, item 1).

A manifest with 10,000 layers is refused right after it is parsed, before any blob is asked
for: the source layout here holds none of its blobs, so any fetch would fail differently. A
document nested 100,000 deep is one error line, not a RecursionError traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorry import mediatypes as mt
from lorry.cli.app import run
from lorry.digest import Digest
from lorry.oci import Descriptor, Manifest

UNSUPPORTED, INVALID = 7, 2


def _layout(root: Path, raw: bytes, media_type: str = mt.OCI_MANIFEST) -> None:
    digest = Digest.of(raw)
    blob = root / "blobs" / "sha256" / digest.encoded
    blob.parent.mkdir(parents=True)
    blob.write_bytes(raw)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = {
        "mediaType": media_type,
        "digest": str(digest),
        "size": len(raw),
        "annotations": {"org.opencontainers.image.ref.name": "big"},
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def _many_layers(root: Path, count: int) -> None:
    layers = [
        Descriptor(mt.OCI_LAYER_GZIP, Digest.of(str(i).encode()), 100 + i) for i in range(count)
    ]
    config = Descriptor(mt.OCI_CONFIG, Digest.of(b"{}"), 2)
    _layout(root, Manifest.build(mt.OCI_MANIFEST, config, layers).raw)


@pytest.mark.parametrize(("dest", "limit"), [("oci:{tmp}/out:big", "1000"), ("lorry:big", "125")])
def test_ten_thousand_layers_are_refused_before_any_blob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dest: str, limit: str
) -> None:
    _many_layers(tmp_path / "src", 10_000)
    argv = ["--root", str(tmp_path / "store"), "copy", f"oci:{tmp_path}/src:big"]
    assert run([*argv, dest.format(tmp=tmp_path)]) == UNSUPPORTED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "10000 layers" in err[0] and f"the {limit} " in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_store_copy_of_126_layers_is_refused_but_a_layout_takes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _many_layers(tmp_path / "src", 126)
    argv = ["--root", str(tmp_path / "store"), "copy", f"oci:{tmp_path}/src:big"]
    assert run([*argv, "lorry:big"]) == UNSUPPORTED
    assert "126 layers" in capsys.readouterr().err
    assert run([*argv, f"oci:{tmp_path}/out:big"]) != UNSUPPORTED  # fails later: no blobs here
    assert "126 layers" not in capsys.readouterr().err


def test_a_manifest_nested_100000_deep_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _layout(tmp_path / "src", b"[" * 100_000 + b"]" * 100_000)
    argv = ["--root", str(tmp_path / "store"), "copy", f"oci:{tmp_path}/src:big"]
    assert run([*argv, f"oci:{tmp_path}/out:big"]) == INVALID
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nested too deeply" in err[0], err
