"""Coarse-to-fine painting: the scales, the style's size, tiling chosen by memory, and a run."""

import numpy as np
import pytest
import tensorflow as tf

from nst_utils import memory, scales, tiles
from nst_utils.errors import ConfigError, NotEnoughMemoryError
from nst_utils.images import generate_noise_image
from nst_utils.settings import DEFAULTS
from nst_utils.training import assign_image
from nst_utils.transfer import build_transfer_costs
from nst_utils.vgg import build_vgg_graph
from nst_utils.weights import load_weights

tf1 = tf.compat.v1
LAYERS = [("conv1_1", 0.5), ("conv2_1", 0.5)]


def big(width, height, iterations, cell=None, **settings):
    """A BigPrint of width x height with these settings changed from the defaults."""
    if "style_layers" in settings:
        settings["style_layers"] = tuple(settings["style_layers"])
    settings = DEFAULTS.replace(image_width=width, image_height=height, **settings)
    return scales.BigPrint(settings, iterations=iterations, cell=cell)


def test_iterations_halve_from_scale_to_scale_and_keep_their_total():
    assert scales.split_iterations(160, 3) == [93, 45, 22]
    assert scales.split_iterations(160, 1) == [160]
    assert sum(scales.split_iterations(100, 4)) == 100
    # Never more than asked: every scale gets one while there are enough, the coarse give way.
    assert scales.split_iterations(4, 4) == [1, 1, 1, 1]
    assert scales.split_iterations(2, 3) == [0, 1, 1]
    for total in range(1, 40):
        for count in range(1, 7):
            split = scales.split_iterations(total, count)
            assert sum(split) == total and len(split) == count, (total, count, split)
            assert min(split) >= (1 if total >= count else 0), (total, count, split)


@pytest.mark.slow
def test_a_stop_request_or_a_non_finite_cost_ends_the_painting(vgg_mat, rng):
    weights = load_weights(vgg_mat)
    content = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    plan = big(32, 32, iterations=[5], content_layer="conv1_2", style_layers=[("conv1_1", 1.0)])
    asked = []
    result = scales.paint(
        weights,
        plan,
        content,
        [content],
        room_mb=1e9,
        should_stop=lambda: asked.append(1) or len(asked) > 2,
    )
    assert (result.iterations, result.stopped) == (2, "interrupted")
    wild = big(
        32,
        32,
        iterations=[5],
        content_layer="conv1_2",
        style_layers=[("conv1_1", 1.0)],
        learning_rate=1e38,
        alpha=1e30,
    )
    result = scales.paint(weights, wild, content, [content], room_mb=1e9)
    assert result.stopped == "non-finite" and np.isfinite(result.image).all()


def test_scales_halve_the_size_down_to_a_smallest_side():
    assert scales.scale_sizes(3000, 2250, 3) == [(750, 563), (1500, 1125), (3000, 2250)]
    assert scales.scale_sizes(400, 300, 1) == [(400, 300)]
    assert scales.scale_sizes(200, 150, 5) == [(100, 75), (200, 150)]  # 75 // 2 < 64
    with pytest.raises(ConfigError, match="positive whole number"):
        scales.scale_sizes(400, 300, 0)


def test_the_style_scale_sizes_the_style_against_the_painting():
    assert scales.style_size(400, 300, 1.0) == (400, 300)
    assert scales.style_size(3000, 2000, 0.25) == (750, 500)
    for bad in (0, -1, float("nan"), "big", 100):
        with pytest.raises(ConfigError, match="style scale"):
            scales.style_size(400, 300, bad)


def test_tiles_are_chosen_only_when_the_whole_image_does_not_fit():
    whole = memory.estimate_peak(3000, 2250, big=True).total_mb  # one tile: the whole image
    assert scales.pick_cell(3000, 2250, whole + 1, 96) is None
    room = whole / 3
    cell = scales.pick_cell(3000, 2250, room, 96)
    assert cell % 16 == 0 and cell > 0
    window = tiles.largest_window(2250, 3000, cell, 96)
    assert memory.estimate_peak(3000, 2250, tile=window).total_mb <= room
    # The fewest tiles that fit, split evenly: a cell 16 pixels smaller makes more tiles, and
    # the smallest cell that makes fewer does not fit.
    count = len(tiles.plan_tiles(2250, 3000, cell, 96))
    assert len(tiles.plan_tiles(2250, 3000, cell - 16, 96)) > count
    fewer = next(
        c for c in range(cell, 3016, 16) if len(tiles.plan_tiles(2250, 3000, c, 96)) < count
    )
    window = tiles.largest_window(2250, 3000, fewer, 96)
    assert memory.estimate_peak(3000, 2250, tile=window).total_mb > room
    with pytest.raises(NotEnoughMemoryError, match="does not fit"):
        scales.pick_cell(3000, 2250, memory.BASE_MB / 2, 96)


@pytest.mark.slow
def test_one_scale_without_tiles_paints_as_the_graph_pipeline_does(vgg_mat, rng):
    weights = load_weights(vgg_mat)
    content = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    plan = big(
        56, 40, iterations=[3], content_layer="conv2_2", style_layers=LAYERS, seed=4, cell=16
    )
    seen = []
    result = scales.paint(
        weights, plan, content, [style], room_mb=1e9, on_step=lambda *a: seen.append(a)
    )
    painted = result.image
    assert (result.iterations, result.stopped) == (3, None)
    assert [(s[0], s[1], s[2]) for s in seen] == [(0, (56, 40), i) for i in range(3)]
    means = np.reshape(plan.settings.means, (1, 1, 1, 3)).astype(np.float32)
    net_content = content[None].astype(np.float32) - means
    net_style = style[None].astype(np.float32) - means
    graph = tf.Graph()
    with graph.as_default(), tf1.Session(graph=graph) as sess:
        model = build_vgg_graph(weights, 40, 56)
        settings = DEFAULTS.replace(content_layer="conv2_2", style_layers=tuple(LAYERS))
        costs = build_transfer_costs(model, settings)
        costs.targets.fill(sess, net_content, [net_style])
        step = tf1.train.AdamOptimizer(2.0).minimize(costs.total)
        sess.run(tf1.global_variables_initializer())
        assign_image(sess, model["input"], generate_noise_image(net_content, 0.6, seed=4))
        expected_costs = []
        for _ in range(3):
            expected_costs.append(sess.run(costs.reported()))
            sess.run(step)
        expected = sess.run(model["input"])
    np.testing.assert_allclose([s[3] for s in seen], expected_costs, rtol=1e-4)
    np.testing.assert_allclose(painted, expected, atol=1e-2)


@pytest.mark.slow
def test_every_step_is_shown_under_its_scale_and_tile_not_under_the_targets(vgg_mat, rng):
    weights = load_weights(vgg_mat)
    content = rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    halo = tiles.halo_for(["conv2_2", "conv1_1", "conv2_1"])
    for cell in (None, 64):  # whole scales, then 2 and 6 tiles
        shown, steps, records = [], [], []
        plan = big(
            160, 128, iterations=[1, 2], content_layer="conv2_2", style_layers=LAYERS, cell=cell
        )
        result = scales.paint(
            weights,
            plan,
            content,
            [style],
            room_mb=1e9,
            on_stage=lambda text, fraction: shown.append(text),
            on_step=lambda *step: steps.append(shown[-1]),
            on_scale=records.append,
        )
        # The scales' records as planned, then as each scale ends: the last is the result's.
        done = [[(r["width"], r["iterations_done"]) for r in rs] for rs in records]
        assert done == [[(80, 0), (160, 0)], [(80, 1), (160, 0)], [(80, 1), (160, 2)]]
        assert records[-1] == result.scales and "peak_mb" not in records[0][0]
        expected = []
        for k, (w, h), count in ((1, (80, 64), 1), (2, (160, 128), 2)):
            n = len(tiles.plan_tiles(h, w, cell, halo))
            tiled = f" in {n} tiles" if n > 1 else ""
            assert f"scale {k}/2, {w}x{h}{tiled}: the targets" in shown
            # Once the targets are read, each step names its scale (and its tile).
            last = f", tile {n}/{n} of pass 2/2" if n > 1 else ""
            expected += [f"scale {k}/2, {w}x{h}{last}"] * count
        assert steps == expected


@pytest.mark.slow
def test_coarse_to_fine_starts_each_scale_from_the_last_and_lowers_the_cost(vgg_mat, rng):
    weights = load_weights(vgg_mat)
    y, x = np.mgrid[0:128, 0:160]
    content = np.stack([x, y * 2, (x + y) // 2], axis=-1).astype(np.uint8)
    style = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    plan = big(
        160,
        128,
        iterations=[6, 3],
        style_scale=0.5,
        content_layer="conv2_2",
        style_layers=LAYERS,
        cell=32,
        learning_rate=4.0,
    )
    seen = []
    painted = scales.paint(
        weights, plan, content, [style], room_mb=1e9, on_step=lambda *a: seen.append(a)
    ).image
    assert painted.shape == (1, 128, 160, 3) and np.isfinite(painted).all()
    assert [s[1] for s in seen] == [(80, 64)] * 6 + [(160, 128)] * 3
    coarse, fine = [s[3][0] for s in seen[:6]], [s[3][0] for s in seen[6:]]
    assert coarse[-1] < coarse[0] and fine[-1] < fine[0]
    # The fine scale starts from the coarse result, not from noise: far below a fresh start.
    fresh = big(
        160,
        128,
        iterations=[1],
        style_scale=0.5,
        content_layer="conv2_2",
        style_layers=LAYERS,
        cell=32,
    )
    start = []
    scales.paint(weights, fresh, content, [style], room_mb=1e9, on_step=lambda *a: start.append(a))
    assert fine[0] < 0.8 * start[0][3][0]


def _generate(vgg_mat, out, *options):
    from nst_utils.cli import main

    return main(
        [
            "generate",
            "--weights",
            str(vgg_mat),
            "--no-progress",
            "--output",
            str(out),
            "--seed",
            "2",
            *options,
        ]
    )


@pytest.mark.slow
def test_generate_paints_coarse_to_fine_with_the_style_scale(
    vgg_mat, tmp_path, capsys, monkeypatch
):
    import json

    import imageio.v3 as iio

    from nst_utils.commands import generate

    out, on_disk = tmp_path / "big", []
    scaled = generate.RunState.scaled

    def scaled_and_read(self, records):  # run.json as a reader sees it while the run goes on
        scaled(self, records)
        on_disk.append(json.loads((out / "run.json").read_text())["scales"])

    monkeypatch.setattr(generate.RunState, "scaled", scaled_and_read)
    code = _generate(
        vgg_mat,
        out,
        "--width",
        "160",
        "--height",
        "128",
        "--scales",
        "2",
        "--style-scale",
        "0.5",
        "--iterations",
        "6",
        "--save-every",
        "2",
    )
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["scales"] == 2 and run["settings"]["style_scale"] == 0.5
    assert run["iterations_completed"] == 6 == len(run["costs"]) and run["stopped"] is None
    assert iio.imread(out / "generated_image.jpg").shape == (128, 160, 3)
    for name in ("0.png", "2.png", "4.png"):  # snapshots at the painting's size
        assert iio.imread(out / name).shape == (128, 160, 3)
    fine = [row["total"] for row in run["costs"][4:]]  # the fine scale's 2 of the 6 (4, 2)
    assert fine[-1] < fine[0]
    # Each scale's size, iterations, tiling, estimate, measured peak and time.
    sizes = [(s["width"], s["height"], s["iterations"], s["tiles"]) for s in run["scales"]]
    assert sizes == [(80, 64, 4, 1), (160, 128, 2, 1)]
    for scale in run["scales"]:
        assert scale["cell"] is None and scale["estimate_mb"] > 0 and scale["seconds"] >= 0
        assert scale["peak_mb"] is None or scale["peak_mb"] > 0
    # run.json told the scales as planned and as each ended, before the painting did.
    done = [[scale["iterations_done"] for scale in record] for record in on_disk]
    assert done == [[0, 0], [4, 0], [4, 2]] and on_disk[-1] == run["scales"]


@pytest.mark.slow
def test_a_finished_coarse_to_fine_run_resumed_for_more_lengthens_its_finest_scale(
    vgg_mat, tmp_path, capsys
):
    import json

    from nst_utils.cli import main

    out = tmp_path / "big"
    assert (
        _generate(
            vgg_mat,
            out,
            "--width",
            "160",
            "--height",
            "128",
            "--scales",
            "2",
            "--iterations",
            "4",
            "--save-every",
            "1",
        )
        == 0
    )  # 3 at 80x64, 1 at 160x128
    first = json.loads((out / "run.json").read_text())
    capsys.readouterr()
    assert main(["generate", "--resume", str(out), "--iterations", "6", "--no-progress"]) == 0
    assert "resuming after iteration 4" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["iterations_completed"] == 6 == len(run["costs"]) and run["stopped"] is None
    assert run["costs"][:4] == first["costs"]
    assert run["snapshots"] == [f"{i}.png" for i in range(6)]
    fine = [row["total"] for row in run["costs"][3:]]  # the fine scale's 1 + 2 more steps
    assert fine[-1] < fine[0]
    from nst_utils.state import read_state

    position = read_state(out / "state.npz")["big"]
    assert position.iterations == [3, 3] and (position.scale, position.step) == (1, 3)
    # The resumed run's record counts the coarse scale as done, and the fine one's 1 + 2 steps.
    assert [(s["iterations"], s["iterations_done"]) for s in run["scales"]] == [(3, 3), (3, 3)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, says",
    [
        (
            ("--scales", "2", "--optimizer", "lbfgs"),
            "--optimizer lbfgs cannot be used in a coarse-to-fine",
        ),
        (("--style-scale", "0.5", "--tv-weight", "1"), "--tv-weight cannot be used"),
        (("--style-scale", "0"), "--style-scale"),
        (("--scales", "0"), "--scales"),
    ],
)
def test_big_print_options_that_cannot_work_get_one_line(vgg_mat, tmp_path, capsys, options, says):
    try:
        code = _generate(vgg_mat, tmp_path / "x", "--width", "64", "--iterations", "1", *options)
    except SystemExit as exit:  # argparse refuses a malformed value itself
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and len([line for line in err if line.startswith("error")]) <= 1


@pytest.mark.slow
def test_a_run_that_cannot_fit_is_refused_before_painting(vgg_mat, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NST_MEMORY_LIMIT_MB", "600")  # less than TensorFlow itself takes
    code = _generate(vgg_mat, tmp_path / "lbfgs", "--width", "64", "--optimizer", "lbfgs")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "needs about" in err[0]
        and "0.6 GB is available (NST_MEMORY_LIMIT_MB)" in err[0]
    )
    code = _generate(vgg_mat, tmp_path / "adam", "--width", "64")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit in 0.6 GB even in the smallest tiles" in err[0]
    assert "close other programs" in err[0]  # nothing fits in 0.6 GB


def test_a_print_too_big_even_for_tiles_is_told_the_largest_size_that_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_mb", lambda: (4096.0, "test"))
    with pytest.raises(NotEnoughMemoryError) as refused:
        scales.pick_cell(40000, 30000, 4096.0, 90)
    message = str(refused.value)
    assert "even in the smallest tiles (it needs about" in message
    width = int(message.split("--width ")[1].rstrip(")"))
    height = width * 3 // 4
    # The size it names fits, tiled, and a tenth more on each side does not.
    assert scales.pick_cell(width, height, 4096.0, 90) is not None
    with pytest.raises(NotEnoughMemoryError):
        scales.pick_cell(width * 11 // 10, height * 11 // 10, 4096.0, 90)


@pytest.mark.slow
def test_a_big_prints_snapshot_n_is_the_image_before_step_n(vgg_mat, tmp_path, capsys):
    # As the README says: 0.png is the starting image (here the content, --init content), at
    # the coarse scale's size upsampled to the painting's; the costs of iteration 0 are its own.
    import json

    import imageio.v3 as iio

    from nst_utils.config import PROJECT_ROOT
    from nst_utils.images import load_image, resize_image

    out = tmp_path / "big"
    assert (
        _generate(
            vgg_mat,
            out,
            "--width",
            "160",
            "--height",
            "128",
            "--scales",
            "2",
            "--init",
            "content",
            "--iterations",
            "4",
            "--save-every",
            "2",
        )
        == 0
    )
    means = np.reshape(DEFAULTS.means, (1, 1, 1, 3)).astype(np.float32)
    content = load_image(PROJECT_ROOT / "images" / "louvre.jpg", (160, 128))
    coarse = resize_image(content, 80, 64)[None].astype(np.float32) - means
    expected = np.clip(np.rint(scales.resize_network(coarse, 160, 128) + means), 0, 255)[0]
    snapshot = iio.imread(out / "0.png").astype(np.float32)
    assert np.abs(snapshot - expected).max() <= 1
    assert np.abs(iio.imread(out / "2.png").astype(np.float32) - expected).mean() > 1
    run = json.loads((out / "run.json").read_text())
    assert run["costs"][0]["content"] == 0.0  # the content image itself, before any step


def test_the_progress_bar_names_the_stage_and_moves_with_the_tiles():
    import io

    from nst_utils.progress import ProgressBar

    out = io.StringIO()
    with ProgressBar(6, stream=out) as bar:
        bar.on_step(0, 1.0, 2.0, 3.0)
        assert bar.bar.n == 1
        bar.on_stage("scale 2/3, 1500x1125, tile 3/4 of pass 2/2", 0.75)
        assert bar.bar.n == 1.75  # the ETA counts the tiles done inside the iteration
        assert bar.bar.desc.startswith("scale 2/3, 1500x1125, tile 3/4")
        bar.on_stage("the last tile", 1.0)
        assert bar.bar.n < 2  # never a whole iteration before the step ends
        bar.on_step(1, 1.0, 2.0, 3.0)
        assert bar.bar.n == 2
        bar.bar.refresh()
    shown = out.getvalue().replace("\r", "\n").splitlines()[-1]
    assert "the last tile" in shown and "2/6 it" in shown and "total 1" in shown
    # A new stage is shown at once, with no progress since the last (a scale's targets).
    with ProgressBar(6, stream=out) as bar:
        bar.on_step(0, 1.0, 2.0, 3.0)
        bar.on_stage("scale 2/3, 3000x2250 in 2 tiles: the targets", 0.0)
        shown = out.getvalue().replace("\r", "\n").splitlines()[-1]
        assert shown.startswith("scale 2/3, 3000x2250 in 2 tiles: the targets:")
        assert "1/6 it" in shown
    with ProgressBar(6, enabled=False, stream=out) as hidden:  # --no-progress
        hidden.on_stage("scale 1/2, 64x48", 0.5)
        hidden.on_step(0, 1.0, 2.0, 3.0)


def test_a_runs_estimate_is_its_largest_scales_and_every_scale_fits_the_room():
    total, plans = scales.run_estimate(400, 300, room_mb=1e6)
    assert [(p.width, p.height, p.cell, p.tiles) for p in plans] == [(400, 300, None, 1)]
    assert total == memory.estimate_peak(400, 300).total_mb  # painted whole, by the graph
    total, plans = scales.run_estimate(3000, 2250, room_mb=8000, scales=3)
    assert [(p.width, p.height) for p in plans] == [(750, 563), (1500, 1125), (3000, 2250)]
    assert plans[-1].cell is not None and plans[-1].tiles > 1
    assert total == max(p.estimate.total_mb for p in plans) <= 8000
    for p in plans:  # each scale whole when it fits, else in tiles that fit
        whole = memory.estimate_peak(p.width, p.height, big=True).total_mb
        assert (p.cell is None) == (whole <= 8000)
        assert p.tiles == len(tiles.plan_tiles(p.height, p.width, p.cell, 96))
    assert plans[-1].describe() == {
        "width": 3000,
        "height": 2250,
        "iterations": 0,
        "tiles": plans[-1].tiles,
        "cell": plans[-1].cell,
        "estimate_mb": round(plans[-1].estimate.total_mb),
    }
    # L-BFGS cannot tile: a run that does not fit whole keeps its whole estimate (refused later).
    total, plans = scales.run_estimate(3000, 2250, room_mb=8000, optimizer="lbfgs")
    assert plans[0].cell is None and total > 8000
