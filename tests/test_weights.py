"""Reading the VGG-19 .mat file: both formats by field name, and a clear error for each bad file."""

import hashlib
import shlex

import numpy as np
import pytest
import scipy.io

from nst_utils import weights
from nst_utils.weights import load, mat, sources
from nst_utils.architecture import CONV_LAYERS
from nst_utils.errors import TruncatedWeightsError, WeightsError
from nst_utils.weights.synthetic import vgg19_mat_dict, write_vgg19_mat


def raw_conv(path, name):
    """Kernel and bias of one layer, dug out of the file by position as the original did."""
    mat = scipy.io.loadmat(str(path))
    for cell in mat["layers"][0]:
        record = cell[0][0]
        if record["name"][0] == name:
            w = record["weights"]
            return w[0][0], w[0][1]
    raise KeyError(name)


@pytest.mark.parametrize("fmt", ["new", "intermediate", "old"])
def test_every_format_loads_all_16_conv_layers(vgg_mat_files, fmt):
    loaded = weights.load_weights(vgg_mat_files[fmt])
    assert loaded.format == fmt
    assert list(loaded.conv) == [layer.name for layer in CONV_LAYERS]
    for layer in CONV_LAYERS:
        kernel, bias = loaded.conv[layer.name]
        assert kernel.shape == layer.kernel_shape and kernel.dtype == np.float32
        assert bias.shape == (layer.kernel_shape[3],) and bias.dtype == np.float32
    np.testing.assert_allclose(loaded.mean_pixel, (123.68, 116.779, 103.939), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["new", "old"])
def test_loaded_arrays_are_the_files_arrays(vgg_mat_files, fmt):
    kernel, bias = raw_conv(vgg_mat_files[fmt], "conv3_2")
    loaded = weights.load_weights(vgg_mat_files[fmt]).conv["conv3_2"]
    np.testing.assert_array_equal(loaded[0], kernel)
    np.testing.assert_array_equal(loaded[1], bias.reshape(-1))


def test_the_fixture_files_have_the_real_layouts(vgg_mat_files):
    new = scipy.io.loadmat(str(vgg_mat_files["new"]))
    old = scipy.io.loadmat(str(vgg_mat_files["old"]))
    assert {k for k in new if not k.startswith("__")} == {"layers", "meta"}
    assert {k for k in old if not k.startswith("__")} == {"layers", "classes", "normalization"}
    assert new["layers"].shape == old["layers"].shape == (1, 43)
    assert new["layers"][0][0][0][0].dtype.names == (
        "name",
        "type",
        "weights",
        "size",
        "pad",
        "stride",
        "precious",
        "dilate",
        "opts",
    )
    assert old["layers"][0][0][0][0].dtype.names == ("weights", "pad", "type", "name", "stride")
    # The original notebook's positional access fits the new format only.
    assert new["layers"][0][21][0][0][0][0] == "conv4_2"
    assert new["layers"][0][21][0][0][2][0][0].shape == (3, 3, 512, 512)
    assert old["layers"][0][21][0][0]["weights"][0][1].shape == (1, 512)
    assert new["layers"][0][21][0][0]["weights"][0][1].shape == (512, 1)


def one_line(exc_info):
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_missing_file_says_where_what_and_how(tmp_path):
    path = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError) as err:
        weights.load_weights(path)
    message = one_line(err)
    assert str(path) in message
    assert sources.WEIGHTS_SOURCES["new"]["url"] in message
    assert "python -m nst_utils fetch-weights" in message


def test_a_folder_is_not_a_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="is a folder") as err:
        weights.load_weights(tmp_path)
    one_line(err)


def test_a_file_that_is_not_a_mat_file(tmp_path):
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(WeightsError, match="not a MATLAB .mat file") as err:
        weights.load_weights(path)
    assert "fetch-weights" in one_line(err)


@pytest.mark.parametrize("fraction", [0.5, 0.02])
def test_a_truncated_file(vgg_mat, tmp_path, fraction):
    data = vgg_mat.read_bytes()
    path = tmp_path / "cut.mat"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(TruncatedWeightsError, match="truncated or corrupt") as err:
        weights.load_weights(path)
    assert "fetch-weights" in one_line(err)


def test_only_a_cut_or_corrupt_mat_is_a_truncated_weights_error(tmp_path):
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(WeightsError) as err:
        weights.load_weights(path, cache=False)
    assert not isinstance(err.value, TruncatedWeightsError)
    assert issubclass(TruncatedWeightsError, WeightsError)


def write_modified(path, change):
    mat = vgg19_mat_dict("new", seed=5)
    change(mat["layers"])
    scipy.io.savemat(str(path), mat, format="5", oned_as="row")
    return path


def test_a_mat_with_a_layer_missing(tmp_path):
    def rename(layers):
        layers[0, 12][0, 0]["name"] = "something_else"

    path = write_modified(tmp_path / "missing.mat", rename)
    with pytest.raises(WeightsError, match="layer conv3_2 is missing") as err:
        weights.load_weights(path)
    assert "check-weights" in one_line(err)


def test_a_mat_with_a_misshaped_kernel(tmp_path):
    def reshape(layers):
        cell = layers[0, 21][0, 0]["weights"]
        cell[0, 0] = np.zeros((3, 3, 512, 256), dtype=np.float32)

    path = write_modified(tmp_path / "misshaped.mat", reshape)
    with pytest.raises(
        WeightsError,
        match=r"conv4_2 kernel has shape \(3, 3, 512, 256\), "
        r"expected \(3, 3, 512, 512\)",
    ) as err:
        weights.load_weights(path)
    one_line(err)


def test_a_mat_without_layers(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(str(path), {"x": np.arange(3)})
    with pytest.raises(WeightsError, match="no `layers` array") as err:
        weights.load_weights(path)
    one_line(err)


def test_problems_are_all_listed(tmp_path):
    def damage(layers):
        layers[0, 0][0, 0]["name"] = "gone"
        layers[0, 34][0, 0]["weights"][0, 1] = np.zeros((1, 7), dtype=np.float32)

    arrays, problems = mat.conv_layer_problems(
        mat.read_mat(write_modified(tmp_path / "d.mat", damage))
    )
    assert problems == ["layer conv1_1 is missing", "layer conv5_4 bias has 7 values, expected 512"]
    assert len(arrays) == 14


def test_fixture_writer_is_repeatable_per_seed(vgg_mat, tmp_path):
    # vgg_mat is the session's new-format file of seed 0, written before this test.
    a = weights.load_weights(write_vgg19_mat(tmp_path / "a.mat", seed=0)).conv["conv1_1"][0]
    b = weights.load_weights(vgg_mat, cache=False).conv["conv1_1"][0]
    c = weights.load_weights(write_vgg19_mat(tmp_path / "c.mat", seed=4)).conv["conv1_1"][0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def backticked(message: str) -> str:
    return message.split("`")[1]


@pytest.fixture
def default_path(tmp_path, monkeypatch):
    """The project's default weights path, moved into a temporary folder."""
    path = tmp_path / "project" / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    monkeypatch.setattr(sources, "default_weights_path", lambda: path)
    return path


def test_the_missing_default_file_suggests_the_plain_command(default_path):
    with pytest.raises(WeightsError) as err:
        weights.load_weights(default_path)
    assert backticked(one_line(err)) == "python -m nst_utils fetch-weights"


def test_a_missing_file_elsewhere_suggests_fetching_to_its_folder(default_path, tmp_path):
    path = tmp_path / "my weights" / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError) as err:
        weights.load_weights(path)
    command = backticked(one_line(err))
    assert shlex.split(command) == [
        "python",
        "-m",
        "nst_utils",
        "fetch-weights",
        "--dest",
        str(path.parent),
    ]
    assert f"{command}` to download them there" in str(err.value)


def test_a_missing_file_named_by_nst_weights_says_to_unset_it(default_path, tmp_path):
    path = tmp_path / "w.mat"
    message = sources.missing_weights_message(path, named_by="NST_WEIGHTS")
    assert message.startswith(
        f"VGG-19 weights not found at {path} (from NST_WEIGHTS): run "
        f"`python -m nst_utils fetch-weights --dest {path}` to download "
        f"them there"
    )
    assert message.endswith(f", or unset NST_WEIGHTS to use the default {default_path}")
    assert "unset" not in sources.missing_weights_message(path, named_by="--weights")


def test_load_for_run_downloads_only_to_the_path_it_may(
    published_is_local, vgg_mat_bytes, tmp_path
):
    allowed = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    other = tmp_path / "elsewhere" / "imagenet-vgg-verydeep-19.mat"
    with pytest.raises(WeightsError, match=r"not found at .* \(from NST_WEIGHTS\)"):
        load.load_for_run(
            other, download_to=allowed, named_by="NST_WEIGHTS", cache=False, progress=False
        )
    with pytest.raises(WeightsError, match="not found"):
        load.load_for_run(allowed, download_to=None, cache=False, progress=False)
    assert published_is_local.requests == [] and not other.parent.exists()
    run = load.load_for_run(
        allowed,
        download_to=tmp_path / "pretrained-model" / ".." / "pretrained-model" / allowed.name,
        cache=False,
        progress=False,
    )
    assert allowed.read_bytes() == vgg_mat_bytes and published_is_local.requests == [None]
    assert (run.path, run.size, run.md5) == (
        allowed,
        len(vgg_mat_bytes),
        hashlib.md5(vgg_mat_bytes).hexdigest(),
    )
    assert run.record() == {
        "path": str(allowed),
        "bytes": len(vgg_mat_bytes),
        "md5": run.md5,
        "format": "new",
    }
