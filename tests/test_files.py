"""Files appear whole or not at all, and a failure leaves no temporary file behind."""

import pytest

from nst_utils.errors import DiskFullError, ImageError, NSTError
from nst_utils.files import check_writable, replace_atomically, write_text_atomically


def test_text_is_written_and_folders_created(tmp_path):
    path = write_text_atomically(tmp_path / "a" / "b" / "r.json", "{}\n")
    assert path.read_text() == "{}\n"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(DiskFullError, match=r"cannot write .*grades.csv: the disk is full"):
        replace_atomically(target, broken, ImageError)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_check_writable_keeps_an_existing_file_and_refuses_a_file_as_folder(tmp_path):
    target = tmp_path / "grades.json"
    target.write_text("previous class")
    assert check_writable(target) == target
    assert target.read_text() == "previous class"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grades.json"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(NSTError, match="cannot write") as err:
        check_writable(blocker / "grades.csv")
    assert "\n" not in str(err.value)
