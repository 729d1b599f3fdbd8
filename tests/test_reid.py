"""Query/gallery evaluation: CMC@k and mAP against a brute-force reference, the manifest's
is_query/is_gallery columns (errors naming the line), and the test split scored with them."""

import numpy as np
import pytest
import torch

from siamese.data.sources.manifest import CSVManifest
from siamese.metrics.knn import gallery_neighbours
from siamese.metrics.reid import reid_metrics
from siamese.metrics.scoring import Scorer
from tests.gallery_fakes import write_gallery


def reference(x, labels, is_query, is_gallery, ks, distance):
    """CMC@k and mAP one query at a time, from the whole distance matrix in float64."""
    x = x.double().numpy()
    if distance == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1 - x @ x.T
    else:
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    hits, aps = {k: 0 for k in ks}, []
    for q in np.nonzero(is_query.numpy())[0]:
        gallery = [g for g in np.nonzero(is_gallery.numpy())[0] if g != q]
        ranked = sorted(gallery, key=lambda g: d[q, g])
        rel = np.array([labels[g] == labels[q] for g in ranked], dtype=float)
        if rel.sum() == 0:
            continue  # no gallery sample of its class: left out
        for k in ks:
            hits[k] += rel[:k].any()
        precision = np.cumsum(rel) / np.arange(1, len(rel) + 1)
        aps.append((precision * rel).sum() / rel.sum())
    return {**{f"cmc_at_{k}": hits[k] / len(aps) for k in ks}, "map": float(np.mean(aps))}


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_cmc_and_map_equal_the_brute_force_reference(distance):
    g = torch.Generator().manual_seed(0)
    n = 300
    labels = torch.randint(0, 15, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + labels.unsqueeze(1).float() * 0.3
    roles = torch.rand(n, 2, generator=g)
    is_query, is_gallery = roles[:, 0] < 0.4, roles[:, 1] < 0.7  # some are both, some neither
    ks = (1, 2, 5, 10)
    got = reid_metrics(x, labels, is_query, is_gallery, ks, distance)
    expected = reference(x, labels, is_query, is_gallery, ks, distance)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < got["map"] < 1 and got["cmc_at_1"] < got["cmc_at_10"]


def test_a_query_in_the_gallery_is_never_its_own_match():
    x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    labels = torch.tensor([0, 1, 0, 1])
    both = torch.ones(4, dtype=torch.bool)
    # each sample's nearest other is of the other class: CMC@1 is 0 (itself would make it 1);
    # its match is second for 0 and 3, third for 1 and 2
    got = reid_metrics(x, labels, both, both, (1, 2))
    assert got["cmc_at_1"] == 0 and got["cmc_at_2"] == 0.5
    assert got["map"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 3 + 1 / 2) / 4)


def test_no_query_with_a_gallery_match_is_an_error():
    x, labels = torch.randn(4, 2), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="none of the 1 queries has a gallery sample"):
        reid_metrics(
            x, labels, torch.tensor([1, 0, 0, 0]).bool(), torch.tensor([0, 0, 1, 1]).bool()
        )


def test_gallery_neighbours_excludes_what_it_is_told():
    g = torch.arange(5.0).unsqueeze(1)
    blocks = list(
        gallery_neighbours(g[:3], g, "euclidean", 2, chunk_size=2, exclude=torch.tensor([0, -1, 2]))
    )
    assert [s for s, _ in blocks] == [0, 2]
    nearest = torch.cat([b for _, b in blocks])
    assert nearest[0, 0] == 1 and nearest[1, 0] == 1 and nearest[2, 0] in (1, 3)


def test_the_scorer_adds_cmc_and_map_only_with_roles():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(6).repeat_interleave(4)
    x = torch.randn(24, 4, generator=g) + labels.unsqueeze(1).float()
    pairs = torch.tensor([[0, 1], [0, 4], [5, 6], [8, 12]])
    scorer = Scorer(one_shot_ways=(), recall_ks=(1, 4))
    plain = scorer(x, labels, pairs)
    roles = torch.stack([torch.arange(24) % 4 == 0, torch.arange(24) % 4 != 0], 1)
    with_roles = scorer(x, labels, pairs, roles=roles)
    assert "map" not in plain and "cmc_at_1" not in plain
    assert with_roles.keys() - plain.keys() == {"cmc_at_1", "cmc_at_4", "map"}
    assert with_roles["map"] == pytest.approx(reid_metrics(x, labels, *roles.T, (1, 4))["map"])
    no_queries = roles.clone()
    no_queries[:, 0] = False  # a split without queries (val of a role manifest) scores as before
    assert scorer(x, labels, pairs, roles=no_queries).keys() == plain.keys()


def manifest(tmp_path, rows: list[str], header="path,label,split,is_query,is_gallery"):
    files = write_gallery(tmp_path / "img", 4, 4)
    lines = [header] + [r.format(*[f.relative_to(tmp_path) for f in files]) for r in rows]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    return CSVManifest(tmp_path / "m.csv", num_workers=0, cache=False)


def reid_rows() -> list[str]:
    """Classes 0-1 for training, 2-3 in test: per class one query and three gallery samples."""
    rows = [f"{{{i}}},c{i // 4},train,," for i in range(8)]
    rows += [f"{{{i}}},c{i // 4},test,{int(i % 4 == 0)},{int(i % 4 != 0)}" for i in range(8, 16)]
    return rows


def test_a_manifest_carries_the_roles(tmp_path):
    data = manifest(tmp_path, reid_rows())(image_size=16, channels=3)
    assert data.roles is not None and data.roles.shape == (16, 2)
    test = data.subset(torch.nonzero(data.split == 2).flatten())
    assert test.roles[:, 0].tolist() == [True, False, False, False] * 2
    assert test.roles[:, 1].tolist() == [False, True, True, True] * 2
    assert manifest(tmp_path / "plain", ["{0},a,", "{1},a,", "{4},b,", "{5},b,"],
                    "path,label,split")(image_size=16).roles is None  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r[:8] + [r[8].replace(",test,1,", ",test,maybe,")] + r[9:],
            "line 10: is_query is 'maybe'",
        ),
        (
            lambda r: [r[0].replace(",train,,", ",train,1,")] + r[1:],
            "line 2: is_query/is_gallery mark samples of the test split",
        ),
        (
            lambda r: [x.replace(",test,1,0", ",test,0,0") for x in r],
            "no is_query row has an is_gallery row",
        ),
    ],
)
def test_role_errors_name_the_line(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        manifest(tmp_path, change(reid_rows())).listing()


def test_one_role_column_alone_is_refused(tmp_path):
    with pytest.raises(ValueError, match="line 1: the header has is_query but not is_gallery"):
        manifest(tmp_path, ["{0},a,test,1"], "path,label,split,is_query").listing()
