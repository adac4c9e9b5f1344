import json

import pytest

from onnxpipe.models.fs import atomic_path, sha256_path, write_json


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "model.onnx"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_folder_replaced_whole(tmp_path):
    dest = tmp_path / "saved_model"
    dest.mkdir()
    (dest / "old.pb").write_text("old")
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "saved_model.pb").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["saved_model.pb"]
    assert [p.name for p in tmp_path.iterdir()] == ["saved_model"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x"):
        pass


def test_json_is_strict_and_hash_is_stable(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    with pytest.raises(ValueError):
        write_json(tmp_path / "b.json", {"x": float("nan")})
    assert not (tmp_path / "b.json").exists()
    assert sha256_path(tmp_path / "a.json") == sha256_path(tmp_path / "a.json")
    assert len(sha256_path(tmp_path)) == 64


def test_a_hard_link_of_the_file_in_place_leaves_no_temporary(tmp_path):
    """A rerun links the same kept file into place again: rename() of a name onto another name of
    the same file does nothing (POSIX), so the temporary must go by itself."""
    import os

    source = tmp_path / "backends" / "model.tflite"
    source.parent.mkdir()
    source.write_bytes(b"kept")
    dest = tmp_path / "model.tflite"
    for _ in range(2):  # the first run, then the rerun after a kill
        with atomic_path(dest) as tmp:
            os.link(source, tmp)
    assert dest.read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backends", "model.tflite"]
