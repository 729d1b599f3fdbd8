"""The LightningModules: one shared encoder, and every backbone × loss learns."""

import pytest
import torch

from siamese.run.build import build
from tests.helpers import options


def test_pair_branches_are_one_module_and_a_step_moves_them_together(make_config):
    _, module = build(make_config("loss=contrastive"))
    encoders = [m for m in module.modules() if type(m).__name__ == "Encoder"]
    assert len(encoders) == 1  # one encoder called twice, never two copies
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    module.eval()
    f1, f2, d = module(x, x)
    assert torch.equal(f1, f2) and torch.allclose(d, torch.zeros(4), atol=1e-4)
    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=0.5)
    y = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    f1, f2, d = module(x, y)
    d.sum().backward()
    head = module.encoder.head.weight
    assert head.grad is not None and head.grad.abs().sum() > 0
    opt.step()
    module.eval()
    f1, f2, d = module(x, x)
    assert torch.allclose(d, torch.zeros(4), atol=1e-4)  # both branches moved as one


def test_triplet_forward_uses_one_encoder_for_all_three(make_config):
    _, module = build(make_config("loss=triplet"))
    module.eval()
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    fa, fp, fn = module(x, x, x)
    assert torch.allclose(fa, fp, atol=1e-5) and torch.allclose(fp, fn, atol=1e-5)


LOSSES = options("loss")
BACKBONES = options("backbone")


# the loss's code does not depend on the backbone: every loss on the default backbone, and every
# backbone under the default loss (the full product repeated resnet18's slow steps per loss)
PAIRS = [("convnet", loss) for loss in LOSSES] + [
    (b, "triplet") for b in BACKBONES if b != "convnet"
]


@pytest.mark.parametrize(("backbone", "loss"), PAIRS)
def test_every_backbone_and_loss_learns_a_batch(make_config, backbone, loss):
    torch.manual_seed(0)
    datamodule, module = build(
        make_config(f"backbone={backbone}", f"loss={loss}", "data.batch_size=16")
    )
    batch = next(iter(datamodule.train_dataloader()))
    opt = torch.optim.Adam(module.parameters(), lr=3e-4)
    losses = []
    for _ in range(30):
        out = module.loss(module.embed(batch["images"]), batch["labels"])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.detach())
    assert all(torch.isfinite(v) for v in losses)
    # batch statistics make single steps noisy: compare the first and last few
    first, last = torch.stack(losses[:5]).mean(), torch.stack(losses[-5:]).mean()
    assert last < first, [round(float(v), 4) for v in losses]


def test_sdrn_discriminator_trains_with_the_module_and_is_not_used_to_embed(make_config):
    _, module = build(make_config("loss=sdrn"))
    names = [n for n, _ in module.named_parameters()]
    assert any(n.startswith("loss.discriminator.") for n in names)
    optimizer = module.configure_optimizers()["optimizer"]
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_optimizer for p in module.loss.discriminator.parameters())
    assert not any(n.startswith("loss.") for n, _ in module.encoder.named_parameters())
