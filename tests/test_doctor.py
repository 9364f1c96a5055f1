"""The weights doctor on good files of each format and on every kind of bad file."""

import hashlib

import numpy as np
import pytest
import scipy.io

from nst_utils import weights
from nst_utils.weights import doctor, sources
from nst_utils.architecture import CONV_LAYERS
from nst_utils.errors import TruncatedWeightsError, WeightsError
from nst_utils.weights.synthetic import MEAN_PIXEL, vgg19_mat_dict


def write_modified(path, change, fmt="new"):
    mat = vgg19_mat_dict(fmt, seed=5)
    change(mat["layers"])
    scipy.io.savemat(str(path), mat, format="5", oned_as="row")
    return path


@pytest.mark.parametrize("fmt", ["new", "intermediate", "old"])
def test_a_good_file_of_each_format(vgg_mat_files, fmt):
    path = vgg_mat_files[fmt]
    report = doctor.diagnose(path)
    assert report.usable and report.problems == []
    assert report.format == fmt
    assert report.size == path.stat().st_size
    assert report.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert report.published is None
    assert report.verdict == "usable, but not the published file (its MD5 matches no published one)"
    assert any("matches neither published file" in note for note in report.notes)
    assert [c.name for c in report.layers] == [layer.name for layer in CONV_LAYERS]
    bias_shape = (lambda out: (1, out)) if fmt == "old" else (lambda out: (out, 1))
    for check, layer in zip(report.layers, CONV_LAYERS):
        assert check.problem is None and check.dtype == "float32"
        assert check.kernel_shape == check.expected_shape == layer.kernel_shape
        assert check.bias_shape == bias_shape(layer.kernel_shape[3])
    np.testing.assert_allclose(report.mean_pixel, MEAN_PIXEL, rtol=1e-6)


def test_a_file_with_a_published_md5_is_named_as_such(vgg_mat, monkeypatch):
    digest = hashlib.md5(vgg_mat.read_bytes()).hexdigest()
    monkeypatch.setitem(
        sources.WEIGHTS_SOURCES, "new", {**sources.WEIGHTS_SOURCES["new"], "md5": digest}
    )
    report = doctor.diagnose(vgg_mat)
    assert report.published == "new"
    assert report.verdict == "usable: the published new-format file"
    assert not any("neither published" in note for note in report.notes)
    assert f"{digest} (the published new-format MD5)" in doctor.format_report(report)


def test_the_real_md5s_are_recognised():
    assert doctor.published_format("106118b7cf60435e6d8e04f6a6dc3657") == "new"
    assert doctor.published_format("8ee3263992981a1d26e73b3ca028a123") == "old"
    assert doctor.published_format("0" * 32) is None


@pytest.mark.parametrize("fraction", [0.5, 0.02])
def test_a_truncated_file(vgg_mat, tmp_path, fraction):
    data = vgg_mat.read_bytes()
    path = tmp_path / "cut.mat"
    path.write_bytes(data[: int(len(data) * fraction)])
    report = doctor.diagnose(path)
    assert not report.usable and report.size == int(len(data) * fraction)
    assert len(report.problems) == 1 and "truncated or corrupt" in report.problems[0]
    assert any("probably a cut download" in note for note in report.notes)
    assert report.verdict == "NOT usable (1 problem)"


def test_a_file_that_is_not_a_mat(tmp_path):
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    path.write_text("<html><body>404 Not Found</body></html>")
    report = doctor.diagnose(path)
    assert not report.usable and "not a MATLAB .mat file" in report.problems[0]
    assert report.md5 == hashlib.md5(path.read_bytes()).hexdigest() and report.format == "unknown"


def test_a_layer_missing_and_a_layer_misshaped(tmp_path):
    def damage(layers):
        layers[0, 12][0, 0]["name"] = "something_else"  # conv3_2
        layers[0, 21][0, 0]["weights"][0, 0] = np.zeros((3, 3, 512, 256), dtype=np.float32)

    report = doctor.diagnose(write_modified(tmp_path / "bad.mat", damage))
    assert report.problems == [
        "layer conv3_2 is missing",
        "layer conv4_2 kernel has shape (3, 3, 512, 256), expected (3, 3, 512, 512)",
    ]
    assert report.verdict == "NOT usable (2 problems)" and report.format == "new"
    by_name = {c.name: c for c in report.layers}
    assert by_name["conv3_2"].kernel_shape is None
    assert by_name["conv4_2"].kernel_shape == (3, 3, 512, 256)
    assert sum(c.problem is None for c in report.layers) == 14
    text = doctor.format_report(report)
    assert "conv layers: 14 of 16 sound" in text
    assert "layer conv3_2 is missing" in text and "NOT usable" in text


def test_dtypes_are_reported_and_checked(tmp_path):
    def retype(layers):
        cell = layers[0, 0][0, 0]["weights"]  # conv1_1 as float64: loads, converted
        cell[0, 0], cell[0, 1] = cell[0, 0].astype(np.float64), cell[0, 1].astype(np.float64)
        cell = layers[0, 2][0, 0]["weights"]  # conv1_2 as integers: cannot serve
        cell[0, 0] = cell[0, 0].astype(np.int32)

    report = doctor.diagnose(write_modified(tmp_path / "types.mat", retype, fmt="old"))
    assert report.layers[0].dtype == "float64" and report.layers[0].problem is None
    assert report.layers[1].dtype == "int32/float32"
    assert report.problems == ["layer conv1_2 weights are int32/float32, expected floating point"]


def test_a_file_without_layers(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(str(path), {"x": np.arange(3)})
    report = doctor.diagnose(path)
    assert not report.usable and "no `layers` array" in report.problems[0]


def test_missing_empty_and_folder(tmp_path):
    missing = doctor.diagnose(tmp_path / "nothing.mat")
    assert missing.size is None and "not found" in missing.problems[0]
    assert "fetch-weights" in missing.problems[0]
    (tmp_path / "empty.mat").write_bytes(b"")
    assert "is empty" in doctor.diagnose(tmp_path / "empty.mat").problems[0]
    assert "is a folder" in doctor.diagnose(tmp_path).problems[0]


def test_the_cache_state_is_reported(vgg_mat_files, tmp_path):
    import shutil

    path = shutil.copy(vgg_mat_files["old"], tmp_path / "w.mat")
    assert doctor.diagnose(path).cache.startswith("none yet")
    weights.load_weights(path)
    assert doctor.diagnose(path).cache.startswith("fresh at")


def test_a_mean_pixel_other_than_imagenets_is_noted(tmp_path):
    mat = vgg19_mat_dict("new", seed=5)
    mat["meta"][0, 0]["normalization"][0, 0]["averageImage"] = np.zeros((1, 1, 3), dtype=np.float32)
    path = tmp_path / "zero-mean.mat"
    scipy.io.savemat(str(path), mat, format="5", oned_as="row")
    report = doctor.diagnose(path, check_cache=False)
    assert report.usable and report.mean_pixel == (0.0, 0.0, 0.0)
    assert any("mean pixel differs" in note for note in report.notes)


def test_the_report_as_dict_is_complete(vgg_mat):
    data = doctor.diagnose(vgg_mat).as_dict()
    assert data["usable"] is True and data["format"] == "new" and len(data["layers"]) == 16
    assert data["layers"][15] == {
        "name": "conv5_4",
        "expected_shape": [3, 3, 512, 512],
        "kernel_shape": [3, 3, 512, 512],
        "bias_shape": [512, 1],
        "dtype": "float32",
        "problem": None,
    }


def test_the_doctor_tells_a_cut_file_by_its_class_not_its_words(vgg_mat, monkeypatch):
    """A TruncatedWeightsError gets the cut-download note whatever it says; a WeightsError that
    only mentions truncation does not."""
    small = {**sources.WEIGHTS_SOURCES["new"], "size": vgg_mat.stat().st_size + 1}
    monkeypatch.setitem(sources.WEIGHTS_SOURCES, "new", small)

    def raising(error):
        def read(path):
            raise error

        return read

    monkeypatch.setattr(doctor, "read_mat", raising(TruncatedWeightsError("it ends early")))
    report = doctor.diagnose(vgg_mat, check_cache=False)
    assert report.problems == ["it ends early"]
    assert any("probably a cut download" in note for note in report.notes)
    monkeypatch.setattr(doctor, "read_mat", raising(WeightsError("not truncated, just wrong")))
    report = doctor.diagnose(vgg_mat, check_cache=False)
    assert report.problems == ["not truncated, just wrong"] and report.notes == []


@pytest.mark.parametrize("kind", ["missing", "folder", "not a mat", "truncated", "no layers"])
def test_the_doctor_and_the_loader_say_the_same(vgg_mat, tmp_path, kind):
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    if kind == "folder":
        path.mkdir()
    elif kind == "not a mat":
        path.write_text("<html>404</html>")
    elif kind == "truncated":
        path.write_bytes(vgg_mat.read_bytes()[:100_000])
    elif kind == "no layers":
        scipy.io.savemat(str(path), {"x": np.arange(3)})
    with pytest.raises(WeightsError) as err:
        weights.load_weights(path, cache=False)
    assert doctor.diagnose(path, check_cache=False).problems == [str(err.value)]


def test_a_missing_file_named_by_nst_weights(tmp_path):
    path = tmp_path / "w.mat"
    report = doctor.diagnose(path, named_by="NST_WEIGHTS")
    assert report.problems == [sources.missing_weights_message(path, "NST_WEIGHTS")]
    assert "unset NST_WEIGHTS" in report.problems[0]
