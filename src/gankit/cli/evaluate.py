"""Measuring: `gankit eval` (a run, checkpoint, samples or folder against a reference set), `features
train`, `bench` (training speed against the tutorial's loop) and `augment-eval`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gankit.cli.common import err


def add(sub) -> None:
    e = sub.add_parser("eval", help="score samples against a reference set (FID, KID, IS, ...)",
                       description="Score a run, a checkpoint, a samples .npz or a folder of images "
                       "against a reference set with the project's offline feature network.")
    e.add_argument("target", metavar="RUN|CHECKPOINT|SAMPLES.npz|DIR", nargs="?")
    e.add_argument("--metrics", default="fid,kid,is,pr,dc,classes",
                   help="comma-separated: fid, kid, is, pr (precision/recall), dc (density/coverage), "
                        "classes (class histogram + KL), dacc (run's D accuracy), memorization (samples' nearest "
                        "training images against held-out real images'); default all but dacc and memorization")
    e.add_argument("--n", type=int, default=10_000, help="samples drawn from a run (default 10000)")
    e.add_argument("--ref", default="mnist:test", help="reference data source (default mnist:test)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--held-out", metavar="SOURCE", help="memorization: real images the generator never saw "
                   "(default: the training source's held-out split: lfw:test for lfw, mnist:test for mnist)")
    e.add_argument("--train", metavar="SOURCE", help="memorization: the generator's training images "
                   "(default: the run's data source; needed for a samples file or folder)")
    e.add_argument("--out", metavar="DIR", help="memorization: where nearest.png and distances.png go "
                   "(default RUN/memorization)")
    e.add_argument("--memorization", choices=("auto", "true", "false"),
                   help="the memorization check of a run, per class: auto (a conditional generator on a labelled "
                        "set of at most 10,000 images), true, false (default: the run's eval.memorization)")
    e.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    e.add_argument("--featurenet", metavar="PATH", help="feature network .safetensors "
                   "(default: the bundled MNIST network; train one with `gankit features train`)")
    e.add_argument("--inception-weights", metavar="PATH",
                   help="also compute the standard Inception FID (needs torch-fidelity and the "
                        "pt_inception-2015-12-05 weights file; nothing is downloaded)")
    e.add_argument("--ref-stats", metavar="FILE.npz",
                   help="also the FID of the samples against these statistics (pytorch-fid / clean-fid .npz with "
                        "mu and sigma); taken in the Inception network with --inception-weights, else in the feature "
                        "network, whose dimension must match")
    e.add_argument("--save-stats", metavar="FILE.npz",
                   help="write FID statistics in pytorch-fid / clean-fid's format, with gankit's protocol record: "
                        "the samples' with a TARGET, else those of --ref")
    e.add_argument("--resize", choices=("legacy", "clean"), default="legacy",
                   help="how images reach the network's input size: legacy (Inception: TensorFlow-1 bilinear, "
                        "no antialiasing; feature networks: antialiased bilinear) or clean (clean-fid's: PIL "
                        "bicubic per channel in float); default legacy")
    e.add_argument("--floor", action="store_true",
                   help="score 10,000 real MNIST training images instead: what a perfect generator gets")
    e.add_argument("--no-ema", action="store_true", help="evaluate a run's raw generator, not its EMA")
    e.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    e.set_defaults(func=cmd_eval)

    f = sub.add_parser("features", help="feature networks for evaluation")
    fsub = f.add_subparsers(metavar="ACTION")
    ft = fsub.add_parser("train", help="train a feature network on a labelled dataset")
    ft.add_argument("--data", required=True, metavar="SOURCE", help="labelled data (class subfolders, npz with y)")
    ft.add_argument("--test", metavar="SOURCE", help="held-out labelled data for the recorded accuracy")
    ft.add_argument("--out", required=True, metavar="PATH.safetensors")
    ft.add_argument("--epochs", type=int, default=3)
    ft.add_argument("--batch", type=int, default=128)
    ft.add_argument("--resolution", type=int, help="resize images first (square side)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--shift", type=int, default=0, metavar="PX",
                    help="augment: translate each training image by up to PX pixels each way (default 0: off)")
    ft.set_defaults(func=cmd_features_train)

    bn = sub.add_parser("bench", help="training speed: gankit's loop against the tutorial's loop",
                        description="Times the tutorial's loop (DataLoader over per-sample PIL "
                        "transforms, Sigmoid + BCELoss, two G forwards) and gankit's loop for the same "
                        "networks, batch and loss, in one process.")
    bn.add_argument("--preset", default="seed-mlp")
    bn.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    bn.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    bn.add_argument("--seconds", type=float, default=10.0, help="seconds of training each (default 10)")
    bn.add_argument("--rounds", type=int, default=5,
                    help="alternating timed rounds the seconds are split into; ratio = median of the "
                    "rounds' ratios (default 5)")
    bn.add_argument("--data", default="mnist")
    bn.add_argument("--precision", choices=("fp32", "bf16"),
                    help="the precision of the headline ratio (default: what train.precision auto picks; "
                    "both are always measured)")
    bn.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of gankit's config, e.g. --set train.channels_last=true (repeatable)")
    bn.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="then a PyTorch profiler trace of STEPS of gankit's steps (after the timed rounds): "
                    "DIR/profile/*.pt.trace.json and the top operators by self time")
    bn.add_argument("--profile-dir", metavar="DIR", help="where --profile writes (default runs/bench-PRESET-TIME)")
    bn.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bn.set_defaults(func=cmd_bench)

    from gankit.apps.augment_eval.protocol import HELP_BUDGETS as AUGMENT_EVAL_BUDGETS  # no torch: plain text

    ae = sub.add_parser("augment-eval", help="does low-data GAN synthetic data beat classical augmentation for a classifier?",
                        description="For each n: train a class-conditional GAN (preset cgan) on n labelled real images "
                        "only (mnist@n), then a small CNN with one fixed recipe on five arms: 1 real(n); 2 real(n) + "
                        "classical augmentation (shifts +-2 px, rotations +-10 deg, elastic alpha 34 sigma 4, Simard et al. "
                        "2003); 3 real(n) + synthetic (each --ratios r: r x n images); 4 real(n) + classical + synthetic; "
                        "5 synthetic only (n images: the Classification Accuracy Score). Test accuracy on the test set "
                        "(MNIST's 10,000), mean and std over classifier seeds; arm 2 is the bar. The ratio reported for "
                        "arms 3/4 is chosen on a stratified validation split of the n images, never the test set. "
                        "Writes OUT/augment_eval.json, .md (table), .png (accuracy vs n) and a GAN run per n. "
                        "Budgets: see --quick and the epilog.",
                        epilog=AUGMENT_EVAL_BUDGETS)
    ae.add_argument("--out", required=True, metavar="DIR", help="new (or empty) output folder")
    ae.add_argument("--n", default="100,500,1000", metavar="LIST",
                    help="labelled real images, comma-separated multiples of the class count, or 'all' "
                    "(default 100,500,1000)")
    ae.add_argument("--ratios", default="0.5,1,4", metavar="LIST",
                    help="synthetic images per real image for arms 3/4 (default 0.5,1,4)")
    ae.add_argument("--data", metavar="DIR", help="a labelled folder (class subfolders) instead of MNIST; needs --test")
    ae.add_argument("--test", metavar="DIR", help="with --data: the labelled test folder (the same classes)")
    ae.add_argument("--quick", action="store_true", help="a smoke run: tiny budgets, one seed, 500 test images")
    ae.add_argument("--seeds", type=int, help="classifier seeds (default 3; --quick 1)")
    ae.add_argument("--gan-steps", type=int, help="GAN training steps per n (overrides the budget)")
    ae.add_argument("--clf-steps", type=int, help="classifier Adam steps (overrides the budget)")
    ae.add_argument("--val-fraction", type=float, default=0.2,
                    help="share of the n images held out to choose the ratio (default 0.2, stratified)")
    ae.add_argument("--gan-set", dest="gan_overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the GAN's config, e.g. --gan-set reg.diffaug=translation (repeatable)")
    ae.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ae.set_defaults(func=cmd_augment_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from gankit import api, disk

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    result = api.evaluate(args.target, metrics, args.n, args.ref, args.seed, args.featurenet, args.device,
                          ema=not args.no_ema, inception_weights=args.inception_weights, floor=args.floor,
                          held_out=args.held_out, train=args.train, out=args.out, ref_stats=args.ref_stats,
                          save_stats=args.save_stats, resize=args.resize,
                          memorization={"true": True, "false": False}.get(args.memorization, args.memorization))
    print_result(result)
    if args.json:
        with disk.atomic(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
        print(f"json:       {args.json}")
    return 0


def print_scored(r: dict, indent: str = "") -> None:
    """A task's held-out scores ({method: {metric: value}}, maybe one level deeper, as the inpaint
    task's {hole kind: {method: ...}}): one line per method, then the protocol."""
    for k, v in r.items():
        if k == "protocol":
            continue
        if isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()):
            print(f"{indent}{k}:")
            print_scored(v, indent + "  ")
        elif isinstance(v, dict):
            print(f"{indent}{k:<14} " + "  ".join(f"{m} {x:.4f}" if isinstance(x, float) else f"{m} {x}"
                                                  for m, x in v.items()))
        else:
            print(f"{indent}{k:<14} {v:.4f}" if isinstance(v, float) else f"{indent}{k:<14} {v}")
    if not indent and "protocol" in r:
        p = r["protocol"]
        print("protocol:      " + "; ".join(f"{k} {v}" for k, v in p.items() if v is not None))


def print_result(r: dict) -> None:
    def line(k, v):
        print(f"{k:<11} {v}")

    if "saved_stats" in r and "seed" not in r["protocol"]:  # --save-stats of a data source, nothing scored
        p = r["protocol"]
        print(f"stats:      {r['saved_stats']} ({p['n']} images of {p['source']})")
        print(f"protocol:   {_network(p)}")
        return
    if "seed" not in r.get("protocol", {}):
        return print_scored(r)  # a task scored on held-out data (translate, superres, interpolate, inpaint)

    for key in ("fid", "fid_inception", "fid_ref_stats", "is", "precision", "recall", "density", "coverage", "class_kl", "modes", "hq"):
        if key in r:
            v = r[key]
            line(key, f"{v:.4f}" if isinstance(v, float) else (f"{v} / {r['n_modes']}" if key == "modes" else v))
    if "kid" in r:
        line("kid", f"{r['kid']['mean']:.5f} +- {r['kid']['std']:.5f}")
    if "class_hist" in r:
        line("class_hist", " ".join(f"{v:.3f}" for v in r["class_hist"]))
    if "d_acc" in r:
        line("d_acc", f"real {r['d_acc']['real']:.3f}  fake {r['d_acc']['fake']:.3f}")
    if "memorization" in r:
        print_memorization(r["memorization"])
    elif isinstance(r["protocol"].get("memorization"), str):  # why a run's own check did not run
        line("memorization", r["protocol"]["memorization"])
    p = r["protocol"]
    if "ref" not in p:  # memorization alone: its own protocol is above
        return
    net = f"{p['feature_net']} (sha256 {p['feature_net_sha256'][:12]}...), " if "feature_net" in p else ""
    print(f"protocol:   {net}{p['n']} samples vs {p['ref']}" + (f" ({p['ref_n']})" if "ref_n" in p else "")
          + f", seed {p['seed']}" + (f", resize {p['resize']}" if "resize" in p else "")
          + (f", run {p['run']} step {p['step']}" if p.get("run") else ""))
    if "inception" in p:
        print(f"inception:  {_network(p['inception'])}")
    if "ref_stats" in p:
        rs = p["ref_stats"]
        made = rs["file_protocol"]
        print(f"ref stats:  {rs['path']} (sha256 {rs['sha256'][:12]}...), "
              + (f"made by gankit from {made.get('n')} images of {made.get('source')}" if made else
                 "no gankit record: made with the same network and resize is the user's word"))
        print(f"            samples in {_network(rs['network'])}")
    if "saved_stats" in r:
        print(f"stats:      {r['saved_stats']}")


def _network(rec: dict) -> str:
    return (f"{rec['network']} ({rec['weights']}, sha256 {rec['network_sha256'][:12]}...), {rec['dims']} features, "
            f"resize {rec['resize']} to {rec['input_size']} px")


def print_memorization(m: dict) -> None:
    """The memorization check: per distance, the two distributions' quantiles, then the verdicts;
    per class when it ran per class (`gankit.metrics.memorization_classes`)."""
    if "classes" in m:
        for name, c in m["classes"].items():
            print(f"class {name}:")
            print_memorization({**c, "verdict": [], "protocol": None})
        for line in m["verdict"]:
            print(f"verdict:    {line}")
        p = m["protocol"]
        print(f"protocol:   memorization {p['rule']}; per class: {p['per_class']}; training {p['train']} "
              f"{p['train_n']}, held-out {p['held_out']} {p['held_out_n']}, samples {p['n']}, quantile "
              f"{p['quantile']}; distances: {', '.join(p['distances'])}")
        return
    for name in ("pixel", "features"):
        if name not in m:
            continue
        c = m[name]
        for side in ("samples", "held_out"):
            d = c[side]
            print(f"memorization {name:<8} {side.replace('_', '-'):<9} n {d['n']:<6} median {d['q50']:.4f}  "
                  f"q01 {d['q01']:.4f}  q05 {d['q05']:.4f}  q25 {d['q25']:.4f}  q75 {d['q75']:.4f}")
        print(f"memorization {name:<8} below {c['threshold']:.4f}: {c['share_below']:.1%} of samples (chance limit "
              f"{c['chance_limit']:.1%}); median ratio {c['median_ratio']:.3f}; Mann-Whitney z {c['mann_whitney_z']:.2f}")
    for line in m["verdict"]:
        print(f"verdict:    {line}")
    p = m["protocol"]
    if p is None:  # one class of a per-class check: its pictures, the protocol after the classes
        if "files" in m:
            print(f"pictures:   {m['files']['nearest']}  {m['files']['distances']}")
        return
    print(f"protocol:   memorization, {p['n']} samples at {'x'.join(map(str, p['shape']))} vs training {p['train']} "
          f"({p['train_n']}{', mirrored' if p['mirror'] else ''}), held-out {p['held_out']} ({p['held_out_n']}), "
          f"quantile {p['quantile']}; distances: {'; '.join(f'{k}: {v}' for k, v in p['distances'].items())}"
          + (f"; seed {p['seed']}" + (f", run {p['run']} step {p['step']}" if p.get("run") else "")))
    print(f"pictures:   {m['files']['nearest']}  {m['files']['distances']}")


def cmd_features_train(args: argparse.Namespace) -> int:
    from gankit.data import load_data
    from gankit.metrics.featurenet import save_featurenet, train_featurenet

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise err(f"--out {out}: expected a .safetensors path")
    data = load_data(args.data, args.resolution)
    test = load_data(args.test, args.resolution or data.shape[-1], data.shape[0]) if args.test else None
    if args.epochs < 1 or args.batch < 1:
        raise err("--epochs and --batch must be >= 1")
    if not 0 <= args.shift < min(data.shape[1:]):
        raise err(f"--shift {args.shift}: expected 0 (off) up to {min(data.shape[1:]) - 1} pixels")
    net, meta = train_featurenet(data, test, epochs=args.epochs, batch=min(args.batch, len(data)), seed=args.seed,
                                 shift=args.shift, log=lambda s: print(s, file=sys.stderr))
    meta["command"] = "gankit features train " + " ".join(sys.argv[3:])
    save_featurenet(net, out, meta)
    acc = meta.get("test_accuracy")
    print(f"feature net: {out} (test accuracy {acc:.4f})" if acc is not None else f"feature net: {out}")
    print(f"use it:      gankit eval RUN --featurenet {out} --ref {args.test or args.data}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from gankit.bench import run_bench

    if args.seconds <= 0:
        raise err(f"--seconds {args.seconds}: expected a number > 0")
    if args.rounds < 1:
        raise err(f"--rounds {args.rounds}: expected a number of rounds >= 1")
    if args.profile < 0:
        raise err(f"--profile {args.profile}: expected a number of steps >= 1 (0: off)")
    r = run_bench(args.preset, args.device, args.batch, args.seconds, args.data, args.precision,
                  args.overrides, args.rounds, args.profile, args.profile_dir)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['preset']} on {r['device']}, batch {r['batch']}, {args.seconds:g} s each")
    print(f"train.precision auto picks {r['auto']['choice']} ({r['auto']['why']})")
    print(f"{'':<12} {'steps/s':>10} {'images/s':>12} {'peak MiB':>10} {'x reference':>12}")
    for name, key in (("reference", "reference"), ("gankit fp32", "gankit_fp32"), ("gankit bf16", "gankit_bf16")):
        v = r[key]
        # On CPU the measure is growth of the process's peak RSS; 0 means "below the peak before it"
        mem = "<= before" if r["device"] == "cpu" and name != "reference" and not v["peak_mem_bytes"] \
            else f"{v['peak_mem_bytes'] / 2**20:.1f}"
        ratio = f"{r['ratio_' + name[7:]]:.2f}x" if name != "reference" else ""
        print(f"{name:<12} {v['steps_per_s']:>10.1f} {v['images_per_s']:>12.0f} {mem:>10} {ratio:>12}")
    print(f"ratio        {r['ratio']:.2f}x  gankit in {r['precision']} over the reference (median of "
          f"{len(r['ratio_rounds'])} alternating rounds: {', '.join(f'{x:.2f}' for x in r['ratio_rounds'])})")
    print(f"gankit {r['step_mode']}")
    if "profile" in r:
        print(r["profile"]["table"] or "")
        print(f"profile:   {r['profile']['trace']} (open in Perfetto or TensorBoard); table: {r['profile']['top_ops']}")
    return 0


def cmd_augment_eval(args: argparse.Namespace) -> int:
    import shlex

    from gankit.apps.augment_eval.driver import augment_eval

    r = augment_eval(args.out, args.n, args.data, args.test, args.ratios, quick=args.quick, seeds=args.seeds,
                     gan_steps=args.gan_steps, clf_steps=args.clf_steps, val_fraction=args.val_fraction,
                     device=args.device, gan_overrides=args.gan_overrides,
                     command=shlex.join(["gankit", *args.argv]))
    print(r["summary"])
    print(f"table: {r['files']['table']}  plot: {r['files']['plot']}  json: {r['files']['json']}")
    return 0
