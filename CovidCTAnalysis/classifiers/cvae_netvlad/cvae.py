"""The lesion-informed conditional VAE of iCovid (seed 000, §4.2.1, Fig. 3, Eq. 1-6).

Encoder: the gated two-branch map F (``branches.Encoder``, Eq. 2), flattened through a 64-neuron network phi, joined
with the 64-d label embedding e = phi_embedding(y) (Eq. 3) by a 64-neuron merge network (Eq. 4), re-weighted by
context gating f_hat = sigma(W f + b) ⊙ f (Eq. 5, Kmiec et al. 2018), and mapped to the Gaussian q(z | x, y) with a
16-d latent (§5.1). Decoder p(x_hat | z) (§4.2.1): a dense layer to 64 x 5 x 5, then three transposed convolutions
(32 3 x 3, 16 3 x 3, 1 2 x 2), each with leaky ReLU and followed by bilinear up-sampling, to the slice at
``RECON`` px. Loss: the negative ELBO (Eq. 6) with a Gaussian likelihood (squared error) and the Kullback-Leibler
divergence between q(z | x, y) and the prior.

The paper writes the prior as p(z | x, y), from the same inputs as q, which would let the KL term vanish trivially;
the authors most plausibly meant Sohn et al.'s conditional prior. It is p(z | y) here: a Gaussian whose mean and
log-variance a 16-neuron layer reads from the label embedding, so the two classes get their own prior regions and
the encoder is pushed to separate them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .branches import CHANNELS, SLOPE, Encoder

EMBED = 64  # §5.1: label embedding and merge networks
CONTEXT = 64  # §5.1: context gating
LATENT = 16  # §5.1
#: Side of the reconstructed slice (the frame area-averaged 4 x 4).
RECON = 40


class ContextGating(nn.Module):
    """f_hat = sigmoid(W f + b) ⊙ f (Eq. 5)."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(f)) * f


class Decoder(nn.Module):
    """z (N, LATENT) -> slice (N, 1, RECON, RECON)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(LATENT, CHANNELS * 5 * 5)
        self.up = nn.ModuleList([nn.ConvTranspose2d(CHANNELS, 32, 3, padding=1),
                                 nn.ConvTranspose2d(32, 16, 3, padding=1),
                                 nn.ConvTranspose2d(16, 1, 2)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, CHANNELS, 5, 5)
        for i, layer in enumerate(self.up):
            h = F.leaky_relu(layer(h), SLOPE)
            size = RECON if i == len(self.up) - 1 else h.shape[-1] * 2
            h = F.interpolate(h, size=(size, size), mode="bilinear", align_corners=False)
        return h


class CVAE(nn.Module):
    """The CVAE on cached trunk features (N, 112, 10, 10), lesion masks (N, 1, SIDE, SIDE) and labels (N,)."""

    def __init__(self, side: bool = True, grid: int = 10):
        super().__init__()
        self.encoder = Encoder(side)
        self.phi = nn.Sequential(nn.Flatten(), nn.Linear(CHANNELS * grid * grid, EMBED), nn.LeakyReLU(SLOPE))
        self.embedding = nn.Embedding(2, EMBED)
        self.merge = nn.Sequential(nn.Linear(2 * EMBED, CONTEXT), nn.LeakyReLU(SLOPE))
        self.context = ContextGating(CONTEXT)
        self.posterior = nn.Linear(CONTEXT, 2 * LATENT)
        self.prior = nn.Linear(EMBED, 2 * LATENT)
        self.decoder = Decoder()

    def forward(self, features, lesions, y):
        """(reconstruction, (mu_q, logvar_q), (mu_p, logvar_p))."""
        e = self.embedding(y.long())
        f = self.context(self.merge(torch.cat([self.phi(self.encoder(features, lesions)), e], dim=1)))
        mu_q, logvar_q = self.posterior(f).chunk(2, dim=1)
        mu_p, logvar_p = self.prior(e).chunk(2, dim=1)
        z = mu_q + torch.randn_like(mu_q) * torch.exp(0.5 * logvar_q) if self.training else mu_q
        return self.decoder(z), (mu_q, logvar_q), (mu_p, logvar_p)


def elbo_loss(recon, target, q, p) -> torch.Tensor:
    """Negative ELBO (Eq. 6) per sample: squared error summed over pixels (unit-variance Gaussian, up to a
    constant, halved) plus KL(N(mu_q, var_q) || N(mu_p, var_p))."""
    (mu_q, logvar_q), (mu_p, logvar_p) = q, p
    nll = 0.5 * (recon - target).pow(2).flatten(1).sum(1)
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1).sum(1)
    return (nll + kl).mean()
