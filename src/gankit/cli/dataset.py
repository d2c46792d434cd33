"""`gankit dataset`: a folder, zip, .npz or video made into a dataset zip (`gankit.data.tool`)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

SHOW_SKIPPED = 20  # skip lines printed per reason; the summary counts them all
# gankit.data.tool's TRANSFORMS and RESOLUTIONS, written out: building the parser must not import
# torch (tests/test_layers.py); the tool validates, and a test holds the two equal.
TRANSFORMS = ("center-crop", "center-crop-wide", "pad", "resize")
RESOLUTIONS = (4, 4096)


def add(sub) -> None:
    d = sub.add_parser(
        "dataset", help="make a dataset zip (stylegan2-ada-pytorch's layout) from a folder, zip, .npz or video",
        description="Read SOURCE (a folder of images, recursive, one class per first-level subfolder; a zip of "
        "images, such as one this command or stylegan2-ada-pytorch's dataset_tool.py wrote; a .npz/.npy of "
        "arrays; or a video's frames) and write OUT.zip: uncompressed PNGs at 00000/img00000000.png ... and "
        "dataset.json with the labels, the layout dataset_tool.py writes, plus what was skipped and converted "
        "and a content hash. Unreadable files and images smaller than the target are skipped and named; "
        "greyscale, RGBA, palette, CMYK and 16-bit images are converted and counted. OUT appears only when "
        "complete. See docs/dataset-tool.md.")
    d.add_argument("source", metavar="SOURCE", help="folder, .zip, .npz/.npy, or video (.mp4, .mov, .mkv, .avi, .webm)")
    d.add_argument("out", metavar="OUT.zip", help="the dataset zip to write")
    lo, hi = RESOLUTIONS
    d.add_argument("--resolution", type=int, metavar="R",
                   help=f"square side in pixels, {lo} to {hi} (default: the images' own, when all share one square size)")
    d.add_argument("--transform", default="center-crop", metavar="|".join(TRANSFORMS),
                   help="center-crop: the largest centred square (default); center-crop-wide: the largest centred "
                   "R:HEIGHT crop as a band across the middle of a black square (like dataset_tool.py's, for wide "
                   "pictures such as cars); pad: the whole picture letterboxed on black; resize: the whole "
                   "picture squashed to the square, aspect ratio not kept. Only resize upscales")
    d.add_argument("--height", type=int, metavar="H",
                   help="with center-crop-wide: the picture band's height (default 3/4 of R, as LSUN Car's 512x384)")
    d.add_argument("--max-images", type=int, metavar="N", help="stop after writing N images")
    d.add_argument("--channels", type=int, metavar="1|3",
                   help="1 (grey) or 3 (RGB) (default: 1 when every image is grey, else 3)")
    d.add_argument("--every", type=int, metavar="K", help="a video: keep every K-th frame (default 1: all)")
    d.add_argument("--compress-level", type=int, default=0, metavar="0-9",
                   help="PNG compression: 0 (default, as dataset_tool.py: none, fastest to decode in training) "
                   "to 9 (smallest)")
    d.add_argument("--strict", action="store_true", help="the first file that would be skipped is an error")
    d.add_argument("--force", action="store_true", help="replace OUT.zip if it exists (refused otherwise)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_dataset)


def cmd_dataset(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gankit.data.tool import make_dataset

    shown: Counter = Counter()

    def on_skip(reason: str, line: str) -> None:
        # One line per skipped file, the first SHOW_SKIPPED for each reason: a folder of 10,000
        # thumbnails should not bury the summary. tqdm.write keeps the progress bar whole.
        shown[reason] += 1
        if shown[reason] <= SHOW_SKIPPED:
            tqdm.write(f"gankit: {line}", file=sys.stderr)
        elif shown[reason] == SHOW_SKIPPED + 1:
            tqdm.write(f"gankit: ... more skipped as {reason.replace('_', ' ')} (all counted in the summary)",
                       file=sys.stderr)

    report = make_dataset(args.source, args.out, resolution=args.resolution, transform=args.transform,
                          height=args.height, max_images=args.max_images, channels=args.channels, every=args.every,
                          strict=args.strict, force=args.force, compress_level=args.compress_level,
                          progress=not args.no_progress and sys.stderr.isatty(), on_skip=on_skip)
    for line in report.summary():
        print(line)
    return 0
