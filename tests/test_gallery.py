"""The gallery index: exact answers equal brute force, FAISS recall measured, an update equals a
fresh build, bad images skipped and named, another model refused, answers written as tables and
pictures; the index and search commands."""

import csv
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from siamese.gallery.approximate import Approximate, choose_kind
from siamese.gallery.build import build_index, update_index
from siamese.gallery.nearest import Searcher
from siamese.gallery.store import GalleryIndex, ModelMismatch, load_index
from siamese.inference import load_model
from tests.gallery_fakes import DIM, glyph_images, write_gallery, write_model
from tests.helpers import pil


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("model"))


def in_memory(embeddings: torch.Tensor, distance: str = "euclidean") -> GalleryIndex:
    n = len(embeddings)
    return GalleryIndex(
        Path("/g"), [f"{i:05d}.png" for i in range(n)], torch.zeros(n), torch.zeros(n),
        embeddings, {"distance": distance}, settings={"dtype": "float32"},
    )  # fmt: skip


def brute(queries: torch.Tensor, gallery: torch.Tensor, distance: str) -> torch.Tensor:
    """Every distance, in float64 (the reference)."""
    q, g = queries.double(), gallery.double()
    if distance == "cosine":
        q, g = (torch.nn.functional.normalize(t, dim=1) for t in (q, g))
        return 1 - q @ g.T
    return torch.cdist(q, g)


def clustered(n: int, dim: int = 16, classes: int = 50, seed: int = 0) -> torch.Tensor:
    """Embeddings in clusters, as a trained model's are."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 3
    return centres[torch.randint(classes, (n,), generator=g)] + torch.randn(n, dim, generator=g)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_exact_search_is_the_brute_force_ranking(distance, dtype):
    g = torch.Generator().manual_seed(1)
    gallery, queries = torch.randn(700, 12, generator=g).to(dtype), torch.randn(37, 12, generator=g)
    rows, d = Searcher(in_memory(gallery, distance)).nearest(queries, 10)
    full = brute(queries, gallery, distance)
    expected = full.argsort(dim=1)[:, :10]
    assert torch.equal(rows, expected)
    assert torch.allclose(d.double(), full.gather(1, expected), atol=1e-5)
    assert bool((d[:, 1:] >= d[:, :-1]).all())


def test_k_larger_than_the_gallery_gives_every_image():
    rows, _ = Searcher(in_memory(torch.randn(4, 3))).nearest(torch.randn(2, 3), 10)
    assert rows.shape == (2, 4) and sorted(rows[0].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_faiss_recall_is_measured_and_its_distances_are_exact(kind, distance, tmp_path):
    pytest.importorskip("faiss")
    x = clustered(4000)
    built = Approximate.build(x, distance, kind, target_recall=0.9)
    assert built.recall >= 0.9 and built.k == 10
    index = in_memory(x, distance)
    index.approximate = built.state()
    index.model |= {"path": "m"}
    index.save(tmp_path / "x.idx")
    loaded = Searcher(load_index(tmp_path / "x.idx"))
    assert "FAISS" in loaded.method and loaded.approximate.knob == built.knob
    queries = x[:50] + 0.01
    rows, d = loaded.nearest(queries, 10)
    exact_rows, exact_d = Searcher(index, exact=True).nearest(queries, 10)
    found = sum(
        len(set(a) & set(b)) for a, b in zip(rows.tolist(), exact_rows.tolist(), strict=True)
    )
    assert found / exact_rows.numel() >= 0.85
    assert torch.allclose(d.double(), brute(queries, x, distance).gather(1, rows), atol=1e-5)


def test_auto_chooses_by_size():
    assert [choose_kind("auto", n) for n in (10, 60_000, 10**6)] == ["exact", "hnsw", "ivf"]
    assert choose_kind("exact", 10**6) == "exact"
    with pytest.raises(ValueError, match="approximate must be one of"):
        choose_kind("lsh", 10)


def assert_same_index(a: GalleryIndex, b: GalleryIndex) -> None:
    assert a.files == b.files and a.root == b.root
    assert torch.equal(a.sizes, b.sizes) and torch.equal(a.mtimes, b.mtimes)
    assert torch.allclose(a.embeddings.float(), b.embeddings.float(), atol=1e-5)
    assert a.embeddings.dtype == b.embeddings.dtype
    assert [(s.file, s.size) for s in a.skipped] == [(s.file, s.size) for s in b.skipped]
    assert a.model == b.model


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_update_after_adding_changing_and_deleting_gives_a_fresh_build(model_path, tmp_path, dtype):
    model = load_model(model_path)
    files = write_gallery(tmp_path / "g")
    index = build_index(model, tmp_path / "g", dtype=dtype, num_workers=2)
    assert len(index) == len(files) and index.embeddings.dtype == getattr(torch, dtype)
    index.save(tmp_path / "g.idx")
    extra = glyph_images(2, 2, seed=9).images
    pil(extra[0]).save(tmp_path / "g" / "new.png")  # added
    pil(extra[1]).save(files[3])  # changed: other pixels
    os.utime(files[3], ns=(10**18, 10**18))
    files[5].unlink()  # removed
    (tmp_path / "g" / "broken.png").write_bytes(b"\x89PNG not really")  # added, unreadable
    updated, changes = update_index(load_index(tmp_path / "g.idx"), model)
    assert changes.added == ["broken.png", "new.png"]
    assert changes.changed == [files[3].relative_to(tmp_path / "g").as_posix()]
    assert changes.removed == [files[5].relative_to(tmp_path / "g").as_posix()]
    assert changes.unchanged == len(files) - 2
    assert [s.file for s in updated.skipped] == ["broken.png"]
    assert_same_index(updated, build_index(model, tmp_path / "g", dtype=dtype))
    again, nothing = update_index(updated, model)
    assert not nothing and again is updated  # nothing changed: nothing embedded


def test_a_corrupt_gallery_image_is_skipped_and_named(model_path, tmp_path, caplog):
    files = write_gallery(tmp_path / "g", 2, 2)
    files[1].write_bytes(b"not an image")
    index = build_index(load_model(model_path), tmp_path / "g")
    assert len(index) == 3 and files[1].relative_to(tmp_path / "g").as_posix() not in index.files
    assert index.skipped[0].file == files[1].relative_to(tmp_path / "g").as_posix()
    assert "skipped 1 unreadable image" in caplog.text and str(files[1]) in caplog.text


def test_an_index_refuses_another_model_naming_both(model_path, tmp_path):
    write_gallery(tmp_path / "g", 2, 2)
    index = build_index(load_model(model_path), tmp_path / "g")
    other = write_model(tmp_path / "other", seed=1)
    with pytest.raises(ModelMismatch) as err:
        index.check_model(load_model(other), "g.idx")
    assert str(model_path.resolve()) in str(err.value) and str(other.resolve()) in str(err.value)
    with pytest.raises(ModelMismatch, match="built with model"):
        update_index(index, load_model(other))
    index.check_model(load_model(model_path), "g.idx")  # its own passes


def test_a_file_that_is_no_index_is_refused(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"junk")
    with pytest.raises(ValueError, match="is not a siamese index file"):
        load_index(tmp_path / "x.idx")
    torch.save({"a": 1}, tmp_path / "y.idx")
    with pytest.raises(ValueError, match="no 'siamese-index' format mark"):
        load_index(tmp_path / "y.idx")
    with pytest.raises(FileNotFoundError, match="python -m siamese.index build"):
        load_index(tmp_path / "none.idx")


def command(monkeypatch, capsys, module, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [module, *args])
    __import__(f"siamese.{module}", fromlist=["main"]).main()
    return capsys.readouterr().out


def test_index_and_search_commands(model_path, tmp_path, monkeypatch, capsys):
    files = write_gallery(tmp_path / "g")
    idx = tmp_path / "g.idx"
    out = command(monkeypatch, capsys, "index", "build", f"model={model_path}",
                  f"gallery={tmp_path / 'g'}", f"index={idx}")  # fmt: skip
    assert f"{idx}: {len(files)} images ({DIM}-d float32)" in out and "exact search" in out
    with pytest.raises(SystemExit, match="exists: bring it up to date"):
        command(monkeypatch, capsys, "index", "build", f"model={model_path}",
                f"gallery={tmp_path / 'g'}", f"index={idx}")  # fmt: skip
    assert "is up to date" in command(monkeypatch, capsys, "index", "update", f"index={idx}")
    (tmp_path / "q").mkdir()
    queries = [tmp_path / "q" / f"{i}.png" for i in range(3)]
    for q, f in zip(queries, files[:3], strict=True):
        q.write_bytes(f.read_bytes())
    index = load_index(idx)
    model = load_model(model_path)
    for name in ("r.csv", "r.json", "r.html", "r.png"):
        key = {"csv": "out", "json": "out", "html": "html", "png": "png"}[name[2:]]
        out = command(monkeypatch, capsys, "search", f"index={idx}", f"query={tmp_path / 'q'}",
                      "k=4", f"{key}={tmp_path / name}")  # fmt: skip
        assert "3 queries, 12 answers" in out
    with open(tmp_path / "r.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["query", "rank", "file", "distance", "same"] and len(rows) == 12
    assert json.loads((tmp_path / "r.json").read_text())[0]["file"] == rows[0]["file"]
    for i, q in enumerate(queries):  # each query's own copy in the gallery comes first
        assert rows[4 * i]["query"] == str(q) and rows[4 * i]["file"] == index.files[i]
        assert float(rows[4 * i]["distance"]) < 1e-3 and rows[4 * i]["same"] == "True"
    for r in rows:
        assert (r["same"] == "True") == (float(r["distance"]) < model.threshold)
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64") == 15
    assert Image.open(tmp_path / "r.png").size == (5 * 136, 3 * 150)
    command(
        monkeypatch,
        capsys,
        "search",
        f"index={idx}",
        f"query={queries[0]}",
        f"out={tmp_path / 'r.csv'}",
    )
    assert (tmp_path / "r-1.csv").is_file()  # an earlier result is never overwritten


def test_search_takes_a_list_file_and_skips_unreadable_queries(
    model_path, tmp_path, monkeypatch, capsys, caplog
):
    files = write_gallery(tmp_path / "g", 2, 2)
    (tmp_path / "bad.png").write_bytes(b"junk")
    (tmp_path / "list.txt").write_text(f"{files[1]}\nbad.png\n\n# a comment\n")
    out = command(monkeypatch, capsys, "search", f"model={model_path}", f"gallery={tmp_path / 'g'}",
                  f"query={tmp_path / 'list.txt'}", "k=2")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "  1  0.0000  " + str(files[1]) + "  same" and len(lines) == 2
    assert "bad.png" in caplog.text


def test_search_with_another_model_is_refused(model_path, tmp_path, monkeypatch, capsys):
    write_gallery(tmp_path / "g", 2, 2)
    idx = tmp_path / "g.idx"
    build_index(load_model(model_path), tmp_path / "g").save(idx)
    other = write_model(tmp_path / "other", seed=2)
    with pytest.raises(SystemExit, match="was built with model .* not with"):
        command(monkeypatch, capsys, "search", f"index={idx}", f"model={other}",
                f"query={tmp_path / 'g'}")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "first say build or update"),
        (["build", "dtype=half"], "dtype must be one of"),
        (["build", "approximate=lsh"], "approximate must be one of"),
        (["build", "target_recall=1.5"], "target_recall must be in"),
        (["build", "batch_size=0"], "batch_size must be >= 1"),
        (["update", "index=none.idx"], "index none.idx does not exist: build it with"),
    ],
)
def test_index_command_errors_come_before_any_work(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    given = (
        [*args, "model=absent.onnx", "gallery=absent", "index=new.idx"] if "build" in args else args
    )
    with pytest.raises(SystemExit, match=message):
        command(monkeypatch, capsys, "index", *given)
