"""Image search: `python -m siamese.search ckpt_path=FILE gallery=DIR query=IMAGE k=5` prints the
k gallery images nearest to the query, with their distances. The gallery is embedded in batches."""

from pathlib import Path

import torch

from siamese.checkpoint import load_checkpoint
from siamese.data.images import list_images, load_image
from siamese.distances import distance_matrix
from siamese.keyvalue import argv, parse

USAGE = "python -m siamese.search ckpt_path=FILE gallery=DIR query=IMAGE [k=5] [batch_size=256]"


@torch.inference_mode()
def search(
    ckpt_path: str, gallery: str, query: str, k: int = 5, batch_size: int = 256
) -> list[tuple[Path, float]]:
    module, cfg = load_checkpoint(ckpt_path)
    channels, size = cfg.data.channels, cfg.data.image_size
    q = module.embed(load_image(query, channels, size)[None])
    files = list_images(gallery)
    distances = []
    for start in range(0, len(files), batch_size):
        batch = torch.stack(
            [load_image(p, channels, size) for p in files[start : start + batch_size]]
        )
        distances.append(distance_matrix(q, module.embed(batch), cfg.embedding.distance)[0])
    d = torch.cat(distances)
    top = torch.topk(d, min(k, len(files)), largest=False)
    return [(files[i], float(v)) for v, i in zip(top.values, top.indices.tolist(), strict=True)]


def main() -> None:
    args, _ = parse(
        argv(),
        USAGE,
        {"ckpt_path": None, "gallery": None, "query": None, "k": "5", "batch_size": "256"},
    )
    try:
        k, batch_size = int(args["k"]), int(args["batch_size"])
    except ValueError as err:
        raise SystemExit(f"error: k and batch_size must be integers ({err})") from None
    for rank, (path, d) in enumerate(
        search(args["ckpt_path"], args["gallery"], args["query"], k, batch_size), start=1
    ):
        print(f"{rank:3d}  {d:.4f}  {path}")


if __name__ == "__main__":
    main()
