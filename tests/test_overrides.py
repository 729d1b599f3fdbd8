"""Hydra override strings: the key one sets, its value, and the edits made to lists of them."""

from siamese.config.overrides import (
    is_hydra,
    override_key,
    override_value,
    replace_value,
    split_seed,
)


def test_key_and_value_whatever_the_prefix():
    assert [override_key(o) for o in ("a.b=1", "+a.b=1", "++a.b=1", "~a.b")] == ["a.b"] * 4
    assert (override_value("a=b=c"), override_value("~a")) == ("b=c", "")


def test_hydra_overrides_are_the_launcher_settings():
    assert is_hydra("hydra/launcher=ray") and is_hydra("hydra.sweeper.n_jobs=4")
    assert is_hydra("+hydra.job.chdir=true") and not is_hydra("hydrangea=1")


def test_split_seed_keeps_the_last_seed_and_sorts_the_rest_by_key():
    cell, seed = split_seed(["seed=1", "optimizer=adam", "+experiment=sprn", "seed=2"])
    assert (cell, seed) == (("+experiment=sprn", "optimizer=adam"), "2")
    assert split_seed(["a=1"]) == (("a=1",), None) and split_seed(None) == (None, None)


def test_replace_value_puts_the_key_last_once():
    assert replace_value(["data.fold=3", "x=1", "+data.fold=2"], "data.fold", 0) == [
        "x=1",
        "data.fold=0",
    ]
