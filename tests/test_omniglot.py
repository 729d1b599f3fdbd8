"""Omniglot offline: the background-small sets, the official runs' scorer, and one-shot accuracy
within a group of classes (an alphabet)."""

import hashlib
import io
import itertools
import json
import socket
import time
import zipfile

import pytest
import torch
from PIL import Image

import siamese.benchmark as bench
import siamese.data.sources.omniglot as omniglot
from siamese.data.imageset import SPLIT_CODES
from siamese.data.sources.torchvision_sets import TorchvisionDataset
from siamese.inference import Model
from siamese.metrics.oneshot import class_groups, one_shot_accuracy
from siamese.metrics.scoring import Scorer
from tests.helpers import OFFICIAL_RUNS_ERRORS as EXPECTED
from tests.helpers import grey, official_runs_archive
from tests.helpers import write_official_runs as write_runs

# --- the background-small sets ----------------------------------------------------------------


def write_alphabets(base, folder: str, alphabets: list[str], characters: int = 2) -> None:
    for a, alphabet in enumerate(alphabets):
        for c in range(characters):
            for k in range(2):
                level = (40 * a + 90 * c + 7 * k) % 256
                grey(base / folder / alphabet / f"character{c + 1:02d}" / f"{c}_{k}.png", level)


def test_omniglot_small_trains_on_both_small_sets_once_and_tests_on_evaluation(tmp_path):
    base = tmp_path / "omniglot-py"
    write_alphabets(base, "images_background_small1", ["Balinese", "Greek", "Latin"])
    write_alphabets(base, "images_background_small2", ["Greek", "Latin", "Tagalog"])
    write_alphabets(base, "images_evaluation", ["Korean"])
    data = TorchvisionDataset("OmniglotSmall", tmp_path, download=False)(image_size=8, channels=1)
    names = sorted(data.class_names)
    assert len(names) == 10 and len(data) == 20  # Greek and Latin once: 4 + 1 alphabets × 2
    assert {n.split("/")[0] for n in names} == {"Balinese", "Greek", "Latin", "Tagalog", "Korean"}
    test = data.split == SPLIT_CODES["test"]
    assert {data.class_names[y].split("/")[0] for y in data.labels[test].tolist()} == {"Korean"}
    assert int(test.sum()) == 4 and bool((data.split[~test] == -1).all())


def test_omniglot_small_missing_names_the_files_and_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        TorchvisionDataset("OmniglotSmall", tmp_path, download=False)(image_size=8)
    message = str(err.value)
    for expected in ("omniglot-py/images_background_small1", "omniglot-py/images_evaluation"):
        assert str(tmp_path / expected) in message
    assert f"{omniglot.REPOSITORY}/images_background_small2.zip" in message


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def test_small_sets_are_downloaded_checked_and_unpacked(tmp_path, monkeypatch):
    png = io.BytesIO()
    Image.new("L", (4, 4), 0).save(png, format="PNG")
    archives = {
        name: zipped({f"{name}/Greek/character01/a.png": png.getvalue()})
        for name in omniglot.SMALL_SETS
    }
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(archives[url.rsplit("/", 1)[1].removesuffix(".zip")])

    monkeypatch.setattr(omniglot.urllib.request, "urlopen", urlopen)
    md5 = {name: hashlib.md5(data).hexdigest() for name, data in archives.items()}
    monkeypatch.setattr(omniglot, "SMALL_SETS", md5)
    omniglot.fetch_small_sets(tmp_path, timeout_s=1)
    for name in md5:
        assert (tmp_path / "omniglot-py" / name / "Greek" / "character01" / "a.png").is_file()
    assert asked == [f"{omniglot.REPOSITORY}/{name}.zip" for name in md5]
    monkeypatch.setattr(omniglot, "SMALL_SETS", {"images_background_small3": "0" * 32})
    archives["images_background_small3"] = b"not what was published"
    with pytest.raises(OSError, match="MD5 .*expected 0{32}"):
        omniglot.fetch_small_sets(tmp_path, timeout_s=1)
    assert not (tmp_path / "omniglot-py" / "images_background_small3.zip").exists()


# --- the official runs ------------------------------------------------------------------------


class MeanGrey(Model):
    """A model whose embedding is an image's mean grey level."""

    def __init__(self, path="mean-grey"):
        super().__init__(path, image_size=8, channels=1, distance="euclidean", threshold=1.0)

    def _embed(self, images):
        return images.float().mean(dim=(1, 2, 3))[:, None]


def test_the_official_scorer_gives_the_known_answer_of_a_hand_made_archive(tmp_path):
    write_runs(tmp_path)
    result = bench.score_runs(MeanGrey(), tmp_path)
    assert result["runs"] == EXPECTED and result["error"] == 25.0


def test_benchmark_command_scores_an_archive_and_writes_beside_the_checkpoint(
    tmp_path, monkeypatch, capsys
):
    archive = tmp_path / "all_runs.zip"
    official_runs_archive(archive)
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    monkeypatch.setattr(bench, "load_model", lambda path: MeanGrey(path))
    for _ in range(2):  # a second result is written beside the first, never over it
        monkeypatch.setattr(
            "sys.argv", ["benchmark", "omniglot", f"ckpt_path={ckpt}", f"runs={archive}"]
        )
        bench.main()
    out = capsys.readouterr().out
    assert " run02 (error 25.0%)" in out and "average error 25.00% over 3 runs" in out
    written = sorted(p.name for p in ckpt.parent.glob("benchmark_omniglot*.json"))
    assert written == ["benchmark_omniglot-1.json", "benchmark_omniglot.json"]
    record = json.loads((ckpt.parent / "benchmark_omniglot.json").read_text())
    assert record["runs"] == EXPECTED and record["error"] == 25.0


def test_missing_official_runs_offline_fail_fast_naming_the_file(tmp_path, monkeypatch):
    def unreachable(self, address):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", unreachable)
    monkeypatch.setenv("SIAMESE_CACHE", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        bench.archive(timeout_s=2)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert str(tmp_path / "omniglot" / "all_runs.zip") in message and bench.RUNS_URL in message
    assert "run01/class_labels.txt" in message
    assert list(tmp_path.iterdir()) == []


# --- one-shot within a group ------------------------------------------------------------------


def brute_force_within_group(x, labels, groups, n_way) -> float:
    """The exact probability that a trial is correct: every true class with its weight, every
    query, every set of distractor classes of its group, every choice of supports."""
    classes = labels.unique().tolist()
    members = {c: torch.nonzero(labels == c).flatten().tolist() for c in classes}
    group_of = {c: int(groups[c]) for c in classes}

    def in_group(c):
        return [o for o in classes if group_of[o] == group_of[c]]

    eligible = [c for c in classes if len(members[c]) >= 2 and len(in_group(c)) >= n_way]
    total = 0.0
    for c in eligible:
        others = [o for o in in_group(c) if o != c]
        cases = []
        for q in members[c]:
            for ways in itertools.combinations(others, n_way - 1):
                for s in (m for m in members[c] if m != q):
                    for picks in itertools.product(*(members[o] for o in ways)):
                        d_true = (x[q] - x[s]).norm()
                        cases.append(all(d_true < (x[q] - x[p]).norm() for p in picks))
        total += sum(cases) / len(cases)
    return total / len(eligible)


def test_within_group_one_shot_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    # 9 classes: group 0 with 3, group 1 with 4, group 2 with 2 (too few for 3-way trials)
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2])
    sizes = [2, 3, 2, 3, 2, 2, 3, 2, 2]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    x = torch.randn(len(labels), 2, generator=g) + 0.7 * labels[:, None].float().sin()
    exact = brute_force_within_group(x, labels, groups, 3)
    trials = 200_000
    estimate = one_shot_accuracy(
        x, labels, 3, trials, torch.Generator().manual_seed(1), groups=groups
    )
    assert abs(estimate - exact) < 4 * (exact * (1 - exact) / trials) ** 0.5 + 1e-9
    anywhere = one_shot_accuracy(x, labels, 3, trials, torch.Generator().manual_seed(1))
    assert abs(anywhere - exact) > 0.01  # drawing across groups is another quantity
    with pytest.raises(ValueError, match="no group has n_way=5 classes"):
        one_shot_accuracy(x, labels, 5, 10, torch.Generator(), groups=groups)


def test_the_scorer_adds_within_group_one_shot_where_class_names_have_groups():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat_interleave(4)
    x = torch.randn(24, 4, generator=g)
    pairs = torch.tensor([[0, 1], [0, 5], [4, 9], [8, 20]])
    names = [f"{a}/character{c}" for a in ("Greek", "Latin") for c in range(3)]
    assert class_groups(names).tolist() == [0, 0, 0, 1, 1, 1]
    scorer = Scorer(one_shot_ways=(2, 3, 5), one_shot_trials=50)
    grouped = scorer(x, labels, pairs, class_names=names)
    assert {k for k in grouped if k.endswith("within_group")} == {
        "one_shot_2way_within_group",
        "one_shot_3way_within_group",  # no alphabet has 5 characters: no 5-way within a group
    }
    plain = scorer(x, labels, pairs, class_names=[n.replace("/", "_") for n in names])
    assert plain == scorer(x, labels, pairs)  # names without a group: nothing added
    assert {k: grouped[k] for k in plain} == plain
