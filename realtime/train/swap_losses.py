"""FaceShifter's losses (Li et al. 2020, eq. 4–8), each a scalar mean over the batch.

``scores`` are a multi-scale discriminator's outputs: a list of (B, 1, h, w) maps. Embeddings are
(B, D) and need not be normalised. Attribute maps are lists of (B, C_k, H_k, W_k), coarse to fine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Σ_scales mean(relu(1 − D(real))) + mean(relu(1 + D(fake))): 0 once every real patch scores
    ≥ 1 and every fake one ≤ −1."""
    total = real_scores[0].new_zeros((), dtype=torch.float32)
    for real, fake in zip(real_scores, fake_scores, strict=True):
        total = total + F.relu(1 - real.float()).mean() + F.relu(1 + fake.float()).mean()
    return total


def hinge_generator_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Σ_scales −mean(D(fake)): the generator pushes its patches' scores up."""
    return sum((-fake.float().mean() for fake in fake_scores), fake_scores[0].new_zeros((), dtype=torch.float32))


def identity_loss(swapped_identity: torch.Tensor, source_identity: torch.Tensor) -> torch.Tensor:
    """1 − cos(z_id(Ŷ), z_id(X_s)), averaged over the batch."""
    return (1 - F.cosine_similarity(swapped_identity.float(), source_identity.float(), dim=1)).mean()


def contrastive_identity_loss(swapped_identity: torch.Tensor, source_identity: torch.Tensor, target_identity: torch.Tensor, same: torch.Tensor, temperature: float,
                               *, source_ids: torch.Tensor | None = None, target_ids: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE with hard negatives: −log softmax over cos(z_id(Ŷ_i), ·)/T of the swap's own source
    (the positive) against every other source in the batch and the swap's own target. The target
    is the negative that matters: where identity fails to transfer, the swap's nearest face is the
    person it replaced, and 1 − cos to the source alone does not say "further from the target".

    Samples whose source is their target (``same``, or equal ids) are left out: their positive is
    their target. A negative that is the positive's own image (another row drawn from the same
    face: equal ``source_ids``) does not count, or the loss would push the swap from its source.
    ``source_ids``/``target_ids`` (B,) name the images (face indices); without them every image
    is taken to be distinct. Different photos of one person cannot be told apart here, so they
    count as negatives. Averaged over the samples kept; 0 when none is."""
    swapped = F.normalize(swapped_identity.float(), dim=1)
    sources = F.normalize(source_identity.float(), dim=1)
    targets = F.normalize(target_identity.float(), dim=1)
    batch = len(swapped)
    rows = torch.arange(batch, device=swapped.device)
    source_ids = rows if source_ids is None else source_ids
    target_ids = rows + batch if target_ids is None else target_ids
    # (B, B + 1): column j < B is source j, column B the sample's own target
    logits = torch.cat([swapped @ sources.T, (swapped * targets).sum(dim=1, keepdim=True)], dim=1) / temperature
    copies_of_positive = (source_ids[:, None] == source_ids[None, :]) & (rows[:, None] != rows[None, :])
    target_is_source = (target_ids == source_ids)[:, None]
    logits = logits.masked_fill(torch.cat([copies_of_positive, target_is_source], dim=1), float("-inf"))
    per_sample = -logits.log_softmax(dim=1)[rows, rows]  # the positive is never masked: finite
    return masked_mean(per_sample, ~same & ~target_is_source[:, 0])


def attribute_loss(swapped_attributes: list[torch.Tensor], target_attributes: list[torch.Tensor]) -> torch.Tensor:
    """½ Σ_k ‖z_att^k(Ŷ) − z_att^k(X_t)‖², each level's squared error averaged over its elements
    (so a 2×2 level and a 128² level weigh alike, as in the paper's reference code)."""
    total = swapped_attributes[0].new_zeros((), dtype=torch.float32)
    for swapped, target in zip(swapped_attributes, target_attributes, strict=True):
        total = total + (swapped.float() - target.float()).pow(2).mean()
    return 0.5 * total


def reconstruction_loss(swapped: torch.Tensor, target: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """½‖Ŷ − X_t‖² (mean over pixels) over the samples whose source is the target image itself
    (``same``, a (B,) bool), averaged over those samples; 0 when there are none."""
    return masked_mean(0.5 * (swapped.float() - target.float()).pow(2).flatten(1).mean(dim=1), same)


def feature_matching_loss(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """SimSwap's weak feature matching: Σ_layers mean |D_l(Ŷ) − D_l(X_t)| over the discriminator's
    activations (the real side carries no gradient): the swap's textures pulled towards the
    target's, which an L2 pixel loss alone leaves soft."""
    total = fake_features[0].new_zeros((), dtype=torch.float32)
    for fake, real in zip(fake_features, real_features, strict=True):
        total = total + (fake.float() - real.detach().float()).abs().mean()
    return total


def masked_mean(per_sample: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The mean of a (B,) loss over the samples ``keep`` (a (B,) bool) selects; 0 when none."""
    weight = keep.float()
    return (per_sample.float() * weight).sum() / weight.sum().clamp(min=1.0)
