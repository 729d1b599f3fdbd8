"""The encoder f(x) = head(backbone(x)): one module, shared by every branch of a pair or triplet."""

from torch import Tensor, nn
from torch.nn import functional as F


class Encoder(nn.Module):
    def __init__(self, backbone: nn.Module, embedding_dim: int, l2_normalize: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_features, embedding_dim)
        self.l2_normalize = l2_normalize

    def forward(self, x: Tensor) -> Tensor:
        z = self.head(self.backbone(x))
        return F.normalize(z, dim=-1) if self.l2_normalize else z
