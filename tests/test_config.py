"""Every config file composes and builds; bad input fails at start, naming the key."""

import inspect

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import MISSING, DictConfig, OmegaConf

from siamese.config.checks import RULES, check_config
from siamese.data.sources.synthetic import SyntheticGlyphs
from siamese.run.build import DATAMODULE_KEYS, build, build_scorer
from siamese.run.trainer import make_trainer
from tests.helpers import fake_mnist, options, write_glyph_folder

GROUPS = [
    "data",
    "backbone",
    "normalization",
    "loss",
    "sampler",
    "model",
    "optimizer",
    "scheduler",
    "trainer",
    "logger",
    "experiment",
    "debug",
    "augmentation",
]
CASES = [(g, o) for g in GROUPS for o in options(g)]


def test_every_group_has_options():
    assert all(options(g) for g in GROUPS)


def data_files(option: str, tmp_path) -> list[str]:
    """Files for the data options that read them: a glyph folder, a manifest, a fake MNIST."""
    glyphs = SyntheticGlyphs(num_classes=20, samples_per_class=6)(image_size=16)
    if option in ("folder", "csv"):
        write_glyph_folder(glyphs, tmp_path / "glyphs")
        rows = [
            f"glyphs/{glyphs.class_names[y]}/{i:04d}.png,{glyphs.class_names[y]}"
            for i, y in enumerate(glyphs.labels.tolist())
        ]
        (tmp_path / "m.csv").write_text("\n".join(["path,label", *rows]) + "\n")
        key = "data.root" if option == "folder" else "data.manifest"
        target = tmp_path / ("glyphs" if option == "folder" else "m.csv")
        return [f"{key}={target}", "data.image_size=16"]
    if option == "torchvision":
        fake_mnist(tmp_path, n_train=60, n_test=60)
        return [f"data.root={tmp_path}", "data.download=false", "data.image_size=16"]
    return []


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes_validates_and_builds(make_config, group, option, tmp_path):
    overrides = [f"{group}={option}", *(data_files(option, tmp_path) if group == "data" else [])]
    if group == "sampler":  # a sampler must match its loss's tuples
        loss = {"pair": "contrastive", "triplet": "triplet", "pk": "triplet_batch_hard"}[option]
        overrides.append(f"loss={loss}")
    if group == "model":
        overrides.append(f"loss={'contrastive' if option == 'pair' else 'triplet'}")
    files = group == "data" and option != "synthetic"
    cfg = make_config(*overrides, *(["debug=fast"] if files else []), tiny=not files)
    check_config(cfg)
    if group == "trainer" and cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("no GPU here: composed and validated only")
    if group == "logger":
        assert (
            instantiate(cfg.logger, save_dir="unused") if cfg.logger else None
        ) is not None or option == "none"
        return
    datamodule, module = build(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    out = module.loss(module.embed(batch["images"]), batch["labels"])
    assert torch.isfinite(out.loss)
    module.configure_optimizers()


@pytest.mark.parametrize(
    ("loss", "model", "sampler"),
    [
        ("triplet", "TripletSiameseModule", "TripletSampler"),
        ("contrastive", "PairSiameseModule", "PairSampler"),
        ("sdrn", "PairSiameseModule", "PairSampler"),
        ("triplet_batch_hard", "TripletSiameseModule", "PKSampler"),
    ],
)
def test_a_loss_brings_its_model_and_sampler(make_config, loss, model, sampler):
    cfg = make_config(f"loss={loss}")
    assert cfg.model._target_.endswith(model) and cfg.sampler._target_.endswith(sampler)


def test_sprn_and_sdrn_differ_only_in_loss_sampler_model_and_name(make_config):
    sprn, sdrn = make_config("experiment=sprn"), make_config("experiment=sdrn")
    differ = {k for k in sprn if sprn[k] != sdrn[k]}
    assert differ == {"loss", "sampler", "model", "name"}
    assert sprn.backbone._target_.endswith("TwoBranch")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=abc", "optimizer.lr"),
        ("loss.margin=-1", "loss.margin must be > 0, got -1.0"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be > 0, got 0"),
        ("data.batch_size=0", "data.batch_size must be an integer >= 1, got 0"),
        ("embedding.distance=manhattan", "embedding.distance must be"),
        ("normalization=instancenorm", "Could not find 'normalization/instancenorm'"),
        (
            "normalization=groupnorm normalization.max_groups=0",
            "normalization.max_groups must be an integer >= 1, got 0",
        ),
        (
            "augmentation=light augmentation.hflip=2",
            "augmentation.hflip must be in [0, 1], got 2.0",
        ),
        ("data.split.train=0.9", "data.split fractions must be > 0 and sum to 1"),
        ("evaluation.one_shot_trials=0", "evaluation.one_shot_trials must be an integer >= 1"),
        ("+checkpoint.every=5", "checkpoint.every is not a setting"),
        ("+guard.max_grad=5", "guard.max_grad is not a setting"),
        ("loss.marg=1", "Key 'marg' not in"),
        ("evaluation.monitor=val/recall_at_16", "evaluation.monitor must be one of"),
        ("evaluation.recall_ks=[]", "evaluation.recall_ks must be"),
        ("seed=abc", "seed"),
        ("data.split_by=rows", "data.split_by must be one of ['classes', 'samples'], got 'rows'"),
        ("data.source.noise=-5", "data.source.noise must be >= 0, got -5.0"),
        ("optimizer.lr=nan", "optimizer.lr must be > 0, got nan"),
        ("optimizer.lr=inf", "optimizer.lr must be > 0, got inf"),
        (
            "loss=contrastive sampler.positive_fraction=1.5",
            "sampler.positive_fraction must be in (0, 1)",
        ),
        ("backbone.widths=[]", "backbone.widths must be at least 1 width"),
        ("loss=tripplet", "Could not find 'loss/tripplet'"),
        ("+foo=1", "foo is not a setting"),
        ("+embedding.dims=5", "embedding.dims is not a setting"),
    ],
)
def test_bad_override_fails_at_start_naming_the_key(make_config, override, message):
    with pytest.raises((ConfigCompositionException, ValueError)) as err:
        cfg = make_config(*override.split())
        check_config(cfg)
        build_scorer(cfg)
        build(cfg)
    text = str(err.value) + str(err.value.__cause__)
    assert message in text


def test_a_missing_manifest_is_named_by_its_key(make_config):
    with pytest.raises(ValueError, match="^data.manifest='/nowhere.csv' does not exist"):
        build(make_config("data=csv", "data.manifest=/nowhere.csv", "debug=fast", tiny=False))


def test_a_guard_bound_is_named_by_its_key(make_config, tmp_path):
    cfg = make_config("guard.max_loss=-3")
    datamodule, _ = build(cfg)
    with pytest.raises(ValueError, match=r"^guard.max_loss must be > 0, got -3.0"):
        make_trainer(cfg, tmp_path, datamodule)


def test_sampler_that_does_not_match_the_loss_is_refused(make_config):
    with pytest.raises(ValueError, match="sampler draws tuples of 2 but loss TripletLoss"):
        build(make_config("loss=triplet", "sampler=pair"))


def composed_options(make_config) -> dict[tuple[str, str], DictConfig]:
    """Every option of every group composed on its own (with its loss where it needs one)."""
    needs = {
        ("sampler", "pair"): ["loss=contrastive"],
        ("sampler", "pk"): ["loss=triplet_batch_hard"],
    }
    needs |= {("model", "pair"): ["loss=contrastive"], ("data", "folder"): ["data.root=x"]}
    needs |= {("data", "csv"): ["data.manifest=x"]}
    return {(g, o): make_config(f"{g}={o}", *needs.get((g, o), []), tiny=False) for g, o in CASES}


def test_every_checked_key_exists_in_some_option(make_config):
    configs = composed_options(make_config).values()
    for key in RULES:
        assert any(OmegaConf.select(c, key, default=MISSING) is not MISSING for c in configs), key


def test_class_defaults_agree_with_the_yaml_of_every_option(make_config):
    """A default in a class's signature may not say something else than an option's YAML:
    where they differ, the class must take the value without a default."""
    for (group, option), cfg in composed_options(make_config).items():
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        values = OmegaConf.to_container(node, resolve=True)
        nodes = [values]
        if (
            group == "data"
        ):  # the source takes data.source's keys and those beside the data module's
            beside = {k: v for k, v in values.items() if k not in DATAMODULE_KEYS}
            nodes.append(values["source"] | beside)
        for values in nodes:
            if not values["_target_"].startswith("siamese."):  # other libraries' own defaults
                continue
            params = inspect.signature(get_class(values["_target_"])).parameters
            for key, value in values.items():
                default = params[key].default if key in params else inspect.Parameter.empty
                if default is inspect.Parameter.empty or key.startswith("_"):
                    continue
                default = list(default) if isinstance(default, tuple) else default
                assert default == value, f"{group}={option}: {key}={value!r}, class: {default!r}"
