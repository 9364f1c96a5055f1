"""Peak memory of reading a large photo for a small painting.

    python benchmarks/photo_decode.py                  # a 12000x9000 JPEG (and PNG) to 400x300
    python benchmarks/photo_decode.py --size 6000x4500 --model 800x600

Writes the photo once under the system's temporary folder, then, each in a fresh process, reads
it the way a run needs it and prints the process's peak resident memory:

- `whole`: `read_image` (every pixel decoded) then `resize_image`, what a run did when it had
  to know the photo's aspect from its pixels;
- `reduced`: `image_size` from the header, then `load_image` at the model size, which decodes a
  JPEG at 1/2 to 1/8 scale;
- `baseline`: the same process with nothing decoded (the interpreter, numpy, Pillow, nst_utils).

Memory figures come from getrusage, so they include the interpreter; compare against `baseline`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_size(text: str) -> tuple:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def write_photo(path: Path, width: int, height: int) -> None:
    """A smooth, colourful photo of the given size, written band by band (JPEG or PNG by suffix)."""
    import numpy as np
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, 512):  # bands keep the float temporaries small
        rows = slice(top, min(height, top + 512))
        pixels[rows, :, 0] = x + 0 * y[rows]
        pixels[rows, :, 1] = y[rows] + 0 * x
        pixels[rows, :, 2] = (x + y[rows]) / 2
    Image.fromarray(pixels).save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))


def child(mode: str, path: str, model: tuple) -> None:
    sys.path.insert(0, str(ROOT))
    from nst_utils import images

    start = time.perf_counter()
    if mode == "whole":
        pixels = images.read_image(path)
        out = images.resize_image(pixels, *model)
    elif mode == "reduced":
        images.image_size(path)
        out = images.load_image(path, model)
    else:
        out = None
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "mode": mode,
                "peak_rss_mb": round(peak, 1),
                "seconds": round(seconds, 2),
                "shape": None if out is None else list(out.shape),
            }
        )
    )


def measure(mode: str, path: Path, model: tuple) -> dict:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import photo_decode; "
        f"photo_decode.child({mode!r}, {str(path)!r}, {tuple(model)!r})"
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"mode": mode, "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(12000, 9000))
    parser.add_argument("--model", type=parse_size, default=(400, 300))
    parser.add_argument("--formats", nargs="+", default=["jpg", "png"])
    args = parser.parse_args(argv)
    figures = {"photo": "x".join(map(str, args.size)), "model": "x".join(map(str, args.model))}
    folder = Path(tempfile.gettempdir()) / "nst-bench-photos"
    folder.mkdir(exist_ok=True)
    for suffix in args.formats:
        path = folder / f"photo_{args.size[0]}x{args.size[1]}.{suffix}"
        if not path.exists():
            write_photo(path, *args.size)
        for mode in ("baseline", "whole", "reduced"):
            result = measure(mode, path, args.model)
            figures[f"{suffix}_{mode}"] = result
            print(f"{suffix} {mode:8s}: {result}", flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
