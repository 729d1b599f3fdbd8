"""The TensorBoard items of a run, found again by TensorBoard's own loader and its HTTP server."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.metrics.dashboards import (
    log_distance_histograms,
    log_projector,
    log_verification_curves,
    log_worst_errors,
    select_points,
    worst_errors_grid,
    worst_pairs,
)
from siamese.metrics.scoring import Scorer

CLASSES = ["alpha", "beta", "gamma", "delta"]


def tiny_split():
    data = SyntheticGlyphs(num_classes=4, samples_per_class=5, seed=1)(image_size=16)
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(20, 8, generator=g) + data.labels[:, None].float()
    pairs = torch.randint(0, 20, (30, 2), generator=g)
    pairs[:5, 1] = pairs[:5, 0] + 1 - 2 * (pairs[:5, 0] % 5 == 4).long()  # some similar pairs
    return data, embeddings, pairs


def write_run(logdir: Path, max_points: int = 12) -> dict:
    data, embeddings, pairs = tiny_split()
    d, same = Scorer().pair_distances(embeddings, data.labels, pairs)
    assert same.any() and (~same).any()
    with SummaryWriter(str(logdir)) as writer:
        for epoch in range(2):
            log_distance_histograms(writer, d * (1 + epoch), same, tau=1.5, step=epoch)
        shown = log_projector(writer, embeddings, data.labels, CLASSES, data.images, max_points)
        log_worst_errors(writer, data.images, pairs, d, same, tau=1.5, k=3)
        log_verification_curves(writer, d, same, tau=1.5)
    return {"shown": shown, "labels": data.labels}


def test_event_files_hold_every_item(tmp_path):
    written = write_run(tmp_path)
    acc = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for name in ("similar", "dissimilar", "tau"):
        events = acc.Histograms(f"val_distances/{name}")
        assert [e.step for e in events] == [0, 1]
    tau = acc.Histograms("val_distances/tau")[0].histogram_value
    assert (tau.min, tau.max, tau.num) == (1.5, 1.5, 1)
    assert {"test/worst_errors", "test/roc_curve"} <= set(tags["images"])
    grid = acc.Images("test/worst_errors")[0]
    assert grid.width >= 360 and grid.height > 2 * 64
    assert "test/pr_curve" in tags["tensors"]
    assert acc.SummaryMetadata("test/pr_curve").plugin_data.plugin_name == "pr_curves"

    # the projector: config, tensors, metadata and sprite of the chosen points
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "test_embeddings:00000"' in config and "sprite" in config
    folder = tmp_path / "00000" / "test_embeddings"
    rows = (folder / "tensors.tsv").read_text().splitlines()
    assert len(rows) == 12 and len(rows[0].split("\t")) == 8
    names = (folder / "metadata.tsv").read_text().splitlines()
    assert names == [CLASSES[int(written["labels"][i])] for i in written["shown"]]
    from PIL import Image

    with Image.open(folder / "sprite.png") as sprite:
        assert sprite.size == (4 * 16, 4 * 16)  # ceil(√12) = 4 thumbnails a side, 16 px each


def test_points_are_chosen_evenly_and_the_same_each_time():
    assert select_points(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert select_points(10, 4).tolist() == [0, 3, 6, 9]
    assert torch.equal(select_points(1000, 7), select_points(1000, 7))
    with pytest.raises(ValueError, match="projector_max_points"):
        select_points(10, 0)


def test_worst_pairs_are_the_most_distant_similar_and_closest_dissimilar():
    d = torch.tensor([0.1, 0.9, 0.5, 0.2, 0.7, 0.05])
    same = torch.tensor([True, True, True, False, False, False])
    far, close = worst_pairs(d, same, k=2)
    assert far.tolist() == [1, 2] and close.tolist() == [5, 3]
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    pairs = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 3], [1, 3], [0, 2]])
    grid = worst_errors_grid(images, pairs, d, same, tau=0.3, k=2)
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    # the first similar pair (index 1: images 1 and 2) sits in row one, upscaled to 64 px
    top, left = 6 + 16, 6
    first = grid[top : top + 64, left : left + 64, 0]
    assert np.array_equal(first[::8, ::8], images[1, 0].numpy())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow  # TensorBoard takes several seconds to start
def test_tensorboard_serves_the_projector_and_histograms(tmp_path):
    write_run(tmp_path / "run")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/data/plugin"
    try:
        deadline, runs = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                runs = get_json(f"{base}/projector/runs")
                tags = get_json(f"{base}/histograms/tags")
                if runs and tags.get("run"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert server.poll() is None, server.stderr.read().decode()[-2000:]
        assert runs == ["run"], runs
        assert {"val_distances/similar", "val_distances/dissimilar"} <= set(tags["run"])
        info = get_json(f"{base}/projector/info?run=run")
        assert info["embeddings"][0]["tensorName"] == "test_embeddings:00000"
        assert info["embeddings"][0]["sprite"]["singleImageDim"] == [16, 16]
        histogram = get_json(f"{base}/histograms/histograms?run=run&tag=val_distances/similar")
        assert [step for _, step, _ in histogram] == [0, 1]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
