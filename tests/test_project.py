"""The project around the package: README's two commands, CI, layout, shipped images."""

import hashlib
import re
import shlex
import subprocess
import tomllib

from nst_utils.config import PROJECT_ROOT


def quick_start_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_quick_start_has_exactly_two_commands_main_job_then_tests():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[0].endswith("python -m nst_utils generate")
    assert commands[1].endswith("python -m pytest")


def test_ci_runs_the_readmes_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert f"TEST_COMMAND='{quick_start_commands()[1]}'" in ci
    assert 'bash -c "$TEST_COMMAND"' in ci
    # ruff's lint and format check (configured in pyproject.toml) come first.
    assert "ruff check . && .venv/bin/ruff format --check ." in ci
    assert ci.index('bash -c "$LINT_COMMAND"') < ci.index('bash -c "$TEST_COMMAND"')


def test_the_readmes_test_command_runs_every_test_the_shipping_ones_included():
    # No marker is deselected by default, and CI runs pytest once: the README's command.
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    addopts = shlex.split(config["ini_options"].get("addopts", ""))
    assert not [o for o in addopts if o == "-m" or o.startswith(("-m", "--deselect", "-k"))]
    assert {"ship", "slow"} <= {m.split(":")[0] for m in config["ini_options"]["markers"]}
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert ci.count("python -m pytest") == 1 and quick_start_commands()[1] in ci


def test_layout_of_the_design():
    for folder in ("notebooks", "nst_utils", "pretrained-model", "images", "output", "tests"):
        assert (PROJECT_ROOT / folder).is_dir(), folder
    assert (PROJECT_ROOT / "requirements.txt").is_file()


def test_weights_and_outputs_are_ignored_by_git_but_their_notes_are_not():
    def ignored(path):
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=PROJECT_ROOT).returncode == 0

    if subprocess.run(["git", "rev-parse"], cwd=PROJECT_ROOT, capture_output=True).returncode:
        return  # not a git checkout (an sdist): nothing to check
    assert ignored("pretrained-model/imagenet-vgg-verydeep-19.mat")
    assert ignored("output/generated_image.jpg")
    assert not ignored("pretrained-model/README.md")
    assert not ignored("output/README.md")


def test_shipped_images_match_their_recorded_checksums():
    sources = (PROJECT_ROOT / "images" / "SOURCES.md").read_text()
    for name in ("louvre.jpg", "sandstone.jpg", "seed_result_louvre_sandstone.png"):
        digest = hashlib.sha256((PROJECT_ROOT / "images" / name).read_bytes()).hexdigest()
        assert re.search(rf"{re.escape(name)}\s+{digest}", sources), name
