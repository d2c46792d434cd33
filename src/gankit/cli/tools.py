"""Around runs and data: `report`, `serve`, `export`, `presets` and `data info`."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gankit.cli.common import err, num


def add(sub) -> None:
    rep = sub.add_parser("report", help="write a run's self-contained HTML report, or compare runs on one page",
                         description="One run: RUN/report.html (or --out), one file that opens offline: config and "
                         "command, data, loss and D(x)/D(G(z)) curves, every metric with its protocol, the grids over "
                         "training with a step slider, checkpoints, warnings. Training refreshes it at every grid "
                         "step. Several runs: one page with their curves overlaid and a table of final metrics.")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    rep.add_argument("--out", metavar="HTML", help="where to write the page (default: RUN/report.html for one run, "
                     "compare.html here for several)")
    rep.set_defaults(func=cmd_report)

    sv = sub.add_parser("serve", help="a local web page over a run: sample, interpolate, upload and apply",
                        description="Load the run once and serve a page on this machine with the panels its "
                        "task offers: a sample grid with a seed, a class picker, a latent slider and code sliders for "
                        "runs that generate from noise; an upload box (and a mask canvas where a hole is painted) for "
                        "runs that apply to images; a player for clips; lines at a temperature. Prints its URL; "
                        "Ctrl-C stops. Needs the serve extra (pip install 'gankit[serve]'; make installs it).")
    sv.add_argument("run", metavar="RUN", help="run directory or checkpoint .pt")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only; others warn that anyone on that network can use it)")
    sv.add_argument("--port", type=int, default=0, help="port (default 0: a free one, printed)")
    sv.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="also answer requests addressed to NAME (repeatable); by default only localhost, "
                    "127.0.0.1, ::1 and the --host address are answered, so that no web page can reach the "
                    "server by rebinding its own name to this machine (DNS rebinding)")
    sv.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload (default 10)")
    sv.add_argument("--max-samples", type=int, default=64, help="most samples one request may ask for (default 64)")
    sv.add_argument("--no-ema", action="store_true", help="use the raw generator(s), not the EMA")
    sv.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    sv.set_defaults(func=cmd_serve)

    x = sub.add_parser("export", help="write a run's generator as .safetensors + .json (no pickle), a model-card "
                       "folder, and/or ONNX",
                       description="--out PATH.safetensors: the weights and a PATH.json sidecar. --out DIR (no "
                       "suffix): a folder the Hugging Face Hub reads: model.safetensors, config.json, README.md (the "
                       "model card: task, data, training budget, every recorded metric with its protocol, intended "
                       "use and limits); nothing is uploaded. --onnx adds the inference network(s) as ONNX "
                       "(PATH.onnx beside the file form, DIR/model.onnx in the folder), each checked against PyTorch "
                       "by onnxruntime first: a mismatch is an error and nothing is written. --out PATH.onnx: the "
                       "checked ONNX graph(s) alone.")
    x.add_argument("run", metavar="RUN", help="run directory or checkpoint .pt")
    x.add_argument("--out", required=True, metavar="PATH.safetensors|DIR|PATH.onnx",
                   help="the two-file form, a folder with a model card, or the ONNX graph alone")
    x.add_argument("--no-ema", action="store_true", help="export the raw generator instead of its EMA")
    x.add_argument("--onnx", action="store_true", help="also write the inference network(s) as ONNX, checked "
                   "against PyTorch (needs the onnx extra)")
    x.add_argument("--license", metavar="ID", help="the model card's license (folder form; default: unknown)")
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser("presets", help="list the presets")
    pr.add_argument("name", nargs="?", help="print this preset's full YAML")
    pr.set_defaults(func=cmd_presets)

    d = sub.add_parser("data", help="inspect data sources")
    dsub = d.add_subparsers(metavar="ACTION")
    di = dsub.add_parser("info", help="count, shape, classes, value range and a preview grid")
    di.add_argument("source", metavar="SOURCE")
    di.add_argument("--preview", metavar="PNG", help="where to write the preview grid "
                    "(default: $GANKIT_CACHE/previews/NAME.png)")
    di.add_argument("--resolution", type=int, help="resize as a model would (square side)")
    di.add_argument("--channels", type=int, choices=(1, 3))
    di.set_defaults(func=cmd_data_info)
    ds = dsub.add_parser("slices", help="a DICOM series or NIfTI volume as windowed 8-bit PNG slices")
    ds.add_argument("scan", metavar="SCAN", help="a DICOM file, a folder of one DICOM series, or a .nii/.nii.gz")
    ds.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs (one per slice)")
    ds.add_argument("--window", default="file", help="file (the scan's own window, else auto), auto (percentiles "
                    "1-99), soft-tissue, lung, bone, brain, or CENTRE,WIDTH (default: file)")
    ds.add_argument("--axis", type=int, default=-1, help="NIfTI: the array axis to slice along (default: the last)")
    ds.add_argument("--volume", type=int, default=0, help="4-D NIfTI: which volume (default: 0)")
    ds.set_defaults(func=cmd_data_slices)
    dfo = dsub.add_parser("folder", help="a labelled source written as OUT/CLASS/NNNNNN.png, the layout of your own data")
    dfo.add_argument("source", metavar="SOURCE", help="a labelled data source, e.g. phantoms-lesion")
    dfo.add_argument("--out", required=True, metavar="DIR", help="a new folder")
    dfo.set_defaults(func=cmd_data_folder)


def cmd_report(args: argparse.Namespace) -> int:
    from gankit.report import compare_reports, write_report

    if len(args.runs) == 1:
        print(write_report(args.runs[0], args.out))
    else:
        print(compare_reports(args.runs, args.out or "compare.html"))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gankit.apps.serve import serve

    if not 0 <= args.port <= 65535:
        raise err(f"--port {args.port}: expected 0 (a free port) to 65535")
    if not args.max_upload_mb > 0:
        raise err(f"--max-upload-mb {args.max_upload_mb:g}: expected a size in MB > 0")
    if args.max_samples < 1:
        raise err(f"--max-samples {args.max_samples}: expected a number >= 1")
    serve(args.run, host=args.host, port=args.port, device=args.device, ema=not args.no_ema,
          max_upload_mb=args.max_upload_mb, max_samples=args.max_samples, allow_hosts=args.allow_host)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gankit.export import export_folder, export_generator

    out = Path(args.out)
    if out.suffix == ".onnx":  # the graph(s) alone
        from gankit.export_onnx import export_onnx

        for f in export_onnx(args.run, out, ema=not args.no_ema):
            print(f"onnx:    {f}")
        return 0
    if not out.suffix:
        folder = export_folder(args.run, out, ema=not args.no_ema, onnx=args.onnx, license=args.license)
        for f in sorted(folder.iterdir()):
            print(f"{f.name + ':':<19}{f}")
        return 0
    if args.license is not None:
        raise err(f"--license: the model card comes with the folder form (--out DIR, no suffix), not {out.name}")
    weights, sidecar = export_generator(args.run, out, ema=not args.no_ema, onnx=args.onnx)
    print(f"weights: {weights}")
    print(f"sidecar: {sidecar}")
    if args.onnx:
        for f in sorted(out.parent.glob(f"{out.stem}*.onnx")):
            print(f"onnx:    {f}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from gankit.config import preset_description, preset_names, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return 0
    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def class_counts(labels: list[int], classes: list[str]) -> str:
    """'K: name count, ...' for `gankit data info`."""
    from collections import Counter

    counts = Counter(labels)
    return f"{len(classes)}: " + ", ".join(f"{c} {counts[i]}" for i, c in enumerate(classes))


def text_info(source: str) -> int:
    from gankit.data.corpus import load_text

    data = load_text(source, "char", 10_000)
    lengths = sorted(len(ln) for ln in data.lines)
    print(f"source:   {data.name} (text)")
    print(f"count:    {len(data)} lines, {lengths[0]} to {lengths[-1]} characters (median {lengths[len(lengths) // 2]})")
    print(f"tokens:   {len(data.vocab) - 4} characters, {len({w for ln in data.lines for w in ln.split()})} words")
    if data.y is not None:
        print(f"topics:   {class_counts(data.y.tolist(), data.classes)}")
    for n in data.notes:
        print(f"note:     {n}")
    for ln in data.lines[:5]:
        print(f"example:  {ln}")
    return 0


def audio_info(source: str) -> int:
    from gankit.data.speech import load_audio

    data = load_audio(source)
    print(f"source:   {data.name} (audio)")
    print(f"count:    {len(data)} clips of {data.x.shape[1]} samples at {data.rate} Hz, int16")
    if data.y is not None:
        print(f"classes:  {class_counts(data.y.tolist(), data.classes)}")
    for n in data.notes:
        print(f"note:     {n}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from gankit import viz
    from gankit.data import load_data
    from gankit.util import cache_dir

    if args.source.split(":")[0] == "fortunes" or args.source.removesuffix(":test").endswith(".txt"):
        return text_info(args.source)
    if args.source.split(":")[0] == "spoken-digits":
        return audio_info(args.source)
    if args.source.lower().endswith(".zip") and Path(args.source).expanduser().is_file():
        return zip_info(args)
    data = load_data(args.source, args.resolution, args.channels)
    x = data.x
    print(f"source:   {data.name}")
    print(f"count:    {len(data)}")
    print(f"shape:    {tuple(data.shape)} ({'C, H, W' if data.kind == 'image' else '2-D points'}), "
          f"dtype {str(x.dtype).removeprefix('torch.')}")
    print(f"range:    [{num(x.min())}, {num(x.max())}]")
    if data.y is None:
        print("classes:  none (unlabelled)")
    else:
        counts = np.bincount(data.y.numpy(), minlength=len(data.classes or []))
        listed = ", ".join(f"{c}:{n}" for c, n in zip(data.classes or range(len(counts)), counts))
        print(f"classes:  {len(counts)} ({listed if len(counts) <= 30 else f'{listed[:200]}...'})")
    for note in data.notes:
        print(f"note:     {note}")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in data.name).strip("_") or "data"
    preview = Path(args.preview) if args.preview else cache_dir() / "previews" / f"{safe}.png"
    if data.kind == "points":
        viz.save_scatter(x[:4096], preview, title=data.name)
    else:
        viz.save_grid(x[:64], preview)
    print(f"preview:  {preview}")
    return 0


def cmd_data_slices(args: argparse.Namespace) -> int:
    from gankit.media import medical

    scan = medical.read_scan(args.scan, args.axis, args.volume)
    c, w, note = medical.window_of(scan, args.window)
    paths = medical.write_pngs(medical.apply_window(scan.values, c, w), args.out, scan.slice_names())
    print(f"note:     {note}")
    print(f"wrote:    {len(paths)} PNGs in {args.out} ({paths[0].name} ... {paths[-1].name})")
    return 0


def cmd_data_folder(args: argparse.Namespace) -> int:
    from gankit.data import load_data
    from gankit.data.class_folder import write_class_folder

    counts = write_class_folder(load_data(args.source), args.out)
    print(f"wrote:    {sum(counts.values())} PNGs in {args.out} ({', '.join(f'{c}/: {n}' for c, n in counts.items())})")
    return 0


PREVIEW_N = 64  # images decoded for a zip's preview (the rest stay compressed)


def zip_info(args: argparse.Namespace) -> int:
    """A zip of images read in place (it may hold millions): count, shape, classes, what `gankit
    dataset` recorded, whether its images still hash to the record; a preview of the first 64."""
    import torch

    from gankit import viz
    from gankit.data.archive import ImageArchive, hash_zip
    from gankit.data.stream import conform_image
    from gankit.util import cache_dir

    a = ImageArchive(args.source)
    rec = a.info
    native = a.shape
    shape = (args.channels or native[0], args.resolution or native[1], args.resolution or native[2])
    def line(label: str, value) -> None:
        print(f"{label + ':':<10}{value}")  # as the other sources' info

    line("source", args.source)
    line("count", f"{len(a)}" + (f" (recorded {rec['count']})" if "count" in rec and rec["count"] != len(a) else ""))
    line("shape", f"{native} (C, H, W), uint8" + (f"; read as {shape}" if shape != native else ""))
    if a.labels is None:
        line("classes", "none (unlabelled)")
    else:
        counts = np.bincount(a.labels, minlength=len(a.classes or []))
        listed = ", ".join(f"{c}:{n}" for c, n in zip(a.classes, counts))
        line("classes", f"{len(counts)} ({listed if len(counts) <= 30 else f'{listed[:200]}...'})")
    if rec:
        for key, label in (("source", "origin"), ("transform", "fit"), ("skipped", "skipped"), ("converted", "modes")):
            if key in rec:
                line(label, rec[key])
        ok = hash_zip(a.path) == rec["sha256"] if rec.get("sha256") else None
        line("sha256", f"{rec.get('sha256', 'not recorded')}"
             + ("" if ok is None else " (verified)" if ok else " (DOES NOT MATCH the images: the zip was changed)"))
    else:
        line("record", "none (not written by gankit dataset; labels from dataset.json)" if a.labels is not None
             else "none (not written by gankit dataset)")
    if a.skipped:
        line("note", f"passed over {a.skipped} non-image entries")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(args.source).stem).strip("_") or "data"
    preview = Path(args.preview) if args.preview else cache_dir() / "previews" / f"{safe}.png"
    x = torch.stack([conform_image(a.read(i), native, shape, a.where(i)) for i in range(min(PREVIEW_N, len(a)))])
    viz.save_grid(x, preview)
    line("preview", preview)
    return 1 if rec and rec.get("sha256") and not ok else 0
