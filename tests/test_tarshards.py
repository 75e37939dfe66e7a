"""WebDataset-style tar shards: deterministic bytes, same content as files mode, readable."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers import generate_tiny, tree_bytes

from docsynth.errors import DocsynthError
from docsynth.formats.tarshards import iter_samples, list_shards
from docsynth.io import read_image, read_jsonl, read_mask


def run(out: str, **overrides) -> dict:
    """14 samples in shards of 4: the last shard is short, on purpose."""
    return generate_tiny(out, 5, **{"count": 14, "shard_size": 4, **overrides})


def test_tar_shards_identical_for_one_and_two_workers():
    run("one", shard_format="tar", workers=1)
    run("two", shard_format="tar", workers=2)
    one, two = tree_bytes(Path("one")), tree_bytes(Path("two"))
    assert sorted(one) == sorted(two)
    assert one == two
    assert sorted(n for n in one if n.endswith(".tar")) == [f"shards/{k:05d}.tar" for k in range(4)]
    assert not Path("one/images").exists() and not Path("one/masks").exists()


def test_tar_members_match_files_mode_and_headers_are_fixed():
    run("files", shard_format="files")
    run("tar", shard_format="tar")
    files_rows = read_jsonl("files/manifest.jsonl")
    tar_rows = read_jsonl("tar/manifest.jsonl")
    assert len(tar_rows) == len(files_rows) == 14
    names = []
    for frow, trow in zip(files_rows, tar_rows, strict=True):
        sid = frow["id"]
        # Only where the bytes live differs between the two formats.
        assert trow == {**frow, "image": f"{sid}.jpg", "mask": f"{sid}.mask.png",
                        "tar": f"shards/{int(sid) // 4:05d}.tar"}
    for shard in list_shards("tar"):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                assert (member.mtime, member.uid, member.gid, member.uname, member.gname, member.mode) == \
                    (0, 0, 0, "", "", 0o644)
                names.append(member.name)
                data = tar.extractfile(member).read()
                sid, ext = member.name.split(".", 1)
                frow = files_rows[int(sid)]
                if ext == "jpg":
                    assert data == Path("files", frow["image"]).read_bytes()
                elif ext == "mask.png":
                    assert data == Path("files", frow["mask"]).read_bytes()
                else:
                    assert json.loads(data) == tar_rows[int(sid)]
    # image, mask, json per sample, samples in index order
    assert names == [f"{i:07d}{ext}" for i in range(14) for ext in (".jpg", ".mask.png", ".json")]


def test_iter_samples_decodes_in_order_and_splits_by_rank():
    run("files", shard_format="files")
    run("tar", shard_format="tar")
    rows = read_jsonl("tar/manifest.jsonl")
    samples = list(iter_samples("tar"))
    assert [s["id"] for s in samples] == [r["id"] for r in rows]
    for s, r in zip(samples, rows, strict=True):
        assert s["meta"] == r
        assert s["image"].dtype == np.uint8 and s["image"].shape == (r["height"], r["width"], 3)
        assert set(np.unique(s["mask"])) <= {0, 255}
        np.testing.assert_array_equal(s["image"], read_image(Path("files", "images", f"{r['id']}.jpg")))
        np.testing.assert_array_equal(s["mask"], read_mask(Path("files", "masks", f"{r['id']}.png")))
    raw = next(iter_samples("tar/shards/00001.tar", decode=False))
    assert raw["id"] == "0000004" and raw["image"][:2] == b"\xff\xd8"  # JPEG bytes untouched
    rank0 = [s["id"] for s in iter_samples("tar", rank=0, world_size=2, decode=False)]
    rank1 = [s["id"] for s in iter_samples("tar", rank=1, world_size=2, decode=False)]
    assert rank0 == ["0000000", "0000001", "0000002", "0000003", "0000008", "0000009", "0000010", "0000011"]
    assert sorted(rank0 + rank1) == [r["id"] for r in rows]
    with pytest.raises(DocsynthError, match="rank 2"):
        list(iter_samples("tar", rank=2, world_size=2))


def test_tar_resume_redoes_only_missing_shards():
    run("tar", shard_format="tar")
    before = tree_bytes(Path("tar"))
    Path("tar/shards/00002.jsonl").unlink()
    Path("tar/shards/00002.tar").unlink()
    summary = run("tar", shard_format="tar")
    assert summary["resumed"] == 10 and summary["written"] == 4
    assert tree_bytes(Path("tar")) == before


def test_bad_shards_give_one_line_errors():
    run("tar", shard_format="tar")
    good = Path("tar/shards/00000.tar").read_bytes()
    Path("cut.tar").write_bytes(good[:1000])
    with pytest.raises(DocsynthError, match="cut.tar: not a readable tar shard"):
        list(iter_samples("cut.tar"))
    # A shard whose sample lost its mask member.
    with tarfile.open("tar/shards/00000.tar") as src, tarfile.open("nomask.tar", "w") as dst:
        for member in src.getmembers():
            if not member.name.endswith(".mask.png"):
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(DocsynthError, match="lacks an image, mask.png or json"):
        list(iter_samples("nomask.tar"))
    Path("empty").mkdir()
    with pytest.raises(DocsynthError, match="no tar shards"):
        list(iter_samples("empty"))


def test_cli_shard_format_choice_and_format_switch_needs_force(cli):
    Path("docsynth.yaml").write_text(
        "seed: 5\ngenerate:\n  documents_count: 2\n  backgrounds_count: 2\n  count: 3\n"
        "  source_options: {long_side: 100}\n  background_options: {size: [80, 60]}\n"
        "  compositor_options: {size: [48, 32]}\n")
    bad = cli("generate", "--shard-format", "zip", "-o", "d")
    assert bad.exit_code != 0 and "shard_format" in bad.stderr and "Traceback" not in bad.stderr
    ok = cli("generate", "--shard-format", "tar", "-o", "d", "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["samples"] == 3
    assert [s["id"] for s in iter_samples("d")] == ["0000000", "0000001", "0000002"]
    refused = cli("generate", "-o", "d")  # files format into a tar dataset: another config
    assert refused.exit_code != 0 and "--force" in refused.stderr


@pytest.mark.slow
def test_split_and_train_say_a_tar_dataset_needs_files(cli, tmp_path):
    made = cli("generate", "--count", "4", "--out", "tards", "--shard-format", "tar", "--compositor", "homography")
    assert made.exit_code == 0, made.stderr
    result = cli("split", "tards", "--out", "sp")
    assert result.exit_code == 2
    assert "tar shards" in result.stderr and "--shard-format files" in result.stderr
