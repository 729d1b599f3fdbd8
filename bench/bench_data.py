"""Decoding and gathering image files: decode throughput with 1 vs N workers, decode-cache load vs
decode, and gathering sampled training batches from memory vs streaming (decoded per batch).

    python bench/bench_data.py [--n 2000] [--file-size 96] [--image-size 32] [--workers 2]
                               [--batch-size 64] [--batches 20] [--json]

Writes N glyph images (PNG and JPEG, half each, --file-size px) into a temporary folder, so every
figure comes from the same files in one run. "share of step" divides the gather time by gather
plus one forward/backward pass of the default ConvNet on the same batch (CPU), i.e. the loader's
share of a training step when nothing overlaps it (DataLoader workers hide part of it).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from siamese.data.decode import decode_cached, decode_files
from siamese.data.lazy import LazyImages
from siamese.data.samplers import PairSampler
from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.models.backbones import ConvNet


def write_files(root: Path, n: int, file_size: int) -> tuple[list[Path], torch.Tensor]:
    from PIL import Image

    classes = max(2, n // 20)
    data = SyntheticGlyphs(
        num_classes=classes, samples_per_class=-(-n // classes), image_size=file_size
    )()
    files = []
    for i in range(n):
        folder = root / data.class_names[int(data.labels[i])]
        folder.mkdir(exist_ok=True)
        path = folder / f"{i:06d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(path)
        files.append(path)
    return files, data.labels[:n]


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--file-size", type=int, default=96)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="pairs per batch")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    size, c = args.image_size, 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files, labels = write_files(root, args.n, args.file_size)

        def decode(workers: int, parallel: str = "threads"):
            return decode_files(files, c, size, num_workers=workers, parallel=parallel).images

        t1, ref = timed(lambda: decode(1))
        rows.append(
            {"what": "decode, 1 worker", "seconds": t1, "images/s": args.n / t1, "vs first": 1.0}
        )
        for parallel in ("threads", "processes"):
            tn, out = timed(lambda parallel=parallel: decode(args.workers, parallel))
            assert torch.equal(out, ref)
            rows.append(
                {
                    "what": f"decode, {args.workers} {parallel}",
                    "seconds": tn,
                    "images/s": args.n / tn,
                    "vs first": t1 / tn,
                }
            )
        tmiss, _ = timed(
            lambda: decode_cached(files, root, "bench", c, size, num_workers=args.workers)
        )
        thit, hit = timed(
            lambda: decode_cached(files, root, "bench", c, size, num_workers=args.workers), 3
        )
        assert hit.from_cache and torch.equal(hit.images, ref)
        rows.append(
            {
                "what": "decode + write cache",
                "seconds": tmiss,
                "images/s": args.n / tmiss,
                "vs first": t1 / tmiss,
            }
        )
        rows.append(
            {
                "what": "load from cache",
                "seconds": thit,
                "images/s": args.n / thit,
                "vs first": t1 / thit,
            }
        )

        sampler = PairSampler().bind(labels, torch.Generator().manual_seed(0))
        batches = [sampler.sample(args.batch_size) for _ in range(args.batches)]
        per = args.batch_size * 2 * args.batches
        net = ConvNet(c)
        x = ref[batches[0]].flatten(0, 1).float() / 255

        def step():
            net.zero_grad()
            net(x).square().mean().backward()

        tstep, _ = timed(lambda: [step() for _ in batches], 2)
        lazy1 = LazyImages(files, c, size)
        lazyn = LazyImages(files, c, size, threads=args.workers)
        for name, images in (
            ("memory", ref),
            ("streaming, 1 thread", lazy1),
            (f"streaming, {args.workers} threads", lazyn),
        ):
            tg, got = timed(lambda images=images: [images[b] for b in batches], 2)
            assert all(torch.equal(g, ref[b]) for g, b in zip(got, batches, strict=True))
            rows.append(
                {
                    "what": f"gather {name}",
                    "seconds": tg,
                    "images/s": per / tg,
                    "share of step": tg / (tg + tstep),
                }
            )
        mem = next(r for r in rows if r["what"] == "gather memory")
        for r in rows:
            if r["what"].startswith("gather"):
                r["vs first"] = r["images/s"] / mem["images/s"]
    if args.json:
        print(json.dumps({"args": vars(args), "rows": rows}, indent=2))
        return
    print(
        f"n={args.n} files ({args.file_size}px PNG/JPEG) -> {c}x{size}x{size}, "
        f"{args.batches} batches of {args.batch_size} pairs, ConvNet step {tstep / args.batches * 1e3:.1f} ms"
    )
    print(f"{'':32s} {'seconds':>9s} {'images/s':>10s} {'ratio':>8s} {'share of step':>14s}")
    for r in rows:
        share = f"{r['share of step']:.1%}" if "share of step" in r else ""
        print(
            f"{r['what']:32s} {r['seconds']:9.3f} {r['images/s']:10.0f} {r['vs first']:8.2f} {share:>14s}"
        )
    print("ratio: decode/cache rows vs 1-worker decode (speed-up); gather rows vs memory gather")


if __name__ == "__main__":
    main()
