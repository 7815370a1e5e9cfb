"""RQ-VAE (TIGER): an MLP autoencoder with residual quantisation of its latent, trained with
the pitfalls of method.md section 3 handled (summed reconstruction, codebook loss on the
non-detached codeword, k-means initialisation over many items, dead codes restarted)."""

from __future__ import annotations

import time

import numpy as np

from ..errors import SemidError
from ..events import NEVER, CancelToken, Message, Metric, Progress, TaskGenerator
from .residual import FittedQuantizer, _check_size, nearest_codes, prepare_vectors, residual_encode, unique_last_codes
from .rq_kmeans import _kmeans_centroids, _unmatched_collisions
from .spec import RQKMeansSpec, RQVAESpec


def _build_rqvae(input_dim: int, spec: RQVAESpec):
    """The RQ-VAE module (torch is imported lazily: RQ-KMeans users never pay for it)."""
    import torch
    from torch import nn

    def mlp(widths: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class RQVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [input_dim, *spec.hidden, spec.latent_dim]
            self.encoder = mlp(widths)
            self.decoder = mlp(widths[::-1])
            self.codebooks = nn.Parameter(torch.randn(spec.levels, spec.codebook_size, spec.latent_dim) * 0.01)

        def quantize(self, z: "torch.Tensor", beta: float):
            """Greedy residual quantisation with the VQ losses of every level."""
            residual = z
            quantized = torch.zeros_like(z)
            codes = []
            vq_loss = z.new_zeros(())
            for level in range(spec.levels):
                book = self.codebooks[level]
                dist = (residual.detach() ** 2).sum(1, keepdim=True) - 2 * residual.detach() @ book.T \
                    + (book**2).sum(1)[None, :]
                idx = dist.argmin(1)
                chosen = book[idx]
                # codebook loss on the non-detached codeword; commitment pulls the encoder
                vq_loss = vq_loss + ((residual.detach() - chosen) ** 2).sum(1).mean() \
                    + beta * ((residual - chosen.detach()) ** 2).sum(1).mean()
                quantized = quantized + chosen
                residual = residual - chosen.detach()
                codes.append(idx)
            return torch.stack(codes, 1), quantized, vq_loss

        def forward(self, x: "torch.Tensor", beta: float, quantize: bool = True):
            z = self.encoder(x)
            if not quantize:  # autoencoder warm-up
                return self.decoder(z), z.new_zeros(()), None
            codes, quantized, vq_loss = self.quantize(z, beta)
            z_q = z + (quantized - z).detach()  # straight-through estimator
            return self.decoder(z_q), vq_loss, codes

    return RQVAE()


def _torch_device(spec: RQVAESpec) -> str:
    import torch

    if spec.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise SemidError("device 'cuda' was asked for, but no CUDA GPU is available; use device=cpu")
    return spec.device


def _latents(model, x, batch: int = 4096):
    import torch

    with torch.no_grad():
        return torch.cat([model.encoder(x[s : s + batch]) for s in range(0, len(x), batch)])


def _restart_dead_codes(model, z_all, generator) -> int:
    """Move every unused codeword onto the residual of a random item, level by level.

    Items are drawn in proportion to their residual's squared norm, so restarted codes go
    where the quantisation error is. Returns the number of codes restarted.
    """
    import torch

    restarted = 0
    with torch.no_grad():
        residual = z_all.clone()
        for level in range(model.codebooks.shape[0]):
            book = model.codebooks.data[level]
            idx = torch.cdist(residual, book).argmin(1)
            counts = torch.bincount(idx, minlength=book.shape[0])
            dead = torch.nonzero(counts == 0).flatten()
            if len(dead):
                weights = (residual**2).sum(1) + 1e-12
                picks = torch.multinomial(weights.cpu(), len(dead), replacement=len(dead) > len(weights),
                                          generator=generator).to(residual.device)
                book[dead] = residual[picks]
                restarted += len(dead)
                idx = torch.cdist(residual, book).argmin(1)
            residual = residual - book[idx]
    return restarted


def _rqvae_encode(model, x_t, codebooks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Latents of the inputs and their greedy residual codes (numpy)."""
    z = _latents(model, x_t).cpu().numpy().astype(np.float32)
    codes, _ = residual_encode(z, codebooks)
    return z, codes


def fit_rq_vae(vectors: np.ndarray, spec: RQVAESpec, cancel: CancelToken = NEVER,
               inplace: bool = False) -> TaskGenerator[FittedQuantizer]:
    """Train an RQ-VAE; yields Progress and loss Metrics per epoch, returns a :class:`FittedQuantizer`
    (``inplace`` as for :func:`fit_rq_kmeans`)."""
    import torch

    started = time.perf_counter()
    x = prepare_vectors(vectors, spec.normalize, copy=not inplace)
    _check_size(len(x), spec)
    device = _torch_device(spec)
    torch.manual_seed(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    model = _build_rqvae(x.shape[1], spec).to(device)
    x_t = torch.from_numpy(x).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    n = len(x)
    stage = "RQ-VAE"
    log: list[dict] = []
    restarted_total = 0
    yield Progress(stage, 0, spec.epochs, "autoencoder warm-up")
    for epoch in range(spec.epochs):
        cancel.raise_if_cancelled()
        quantizing = epoch >= spec.warmup_epochs
        if epoch == spec.warmup_epochs:
            yield Message(f"initialising the codebooks by residual k-means over {min(n, spec.kmeans_init_items):,} "
                          "items' latents")
            _kmeans_init(model, x_t, spec, generator)
        model.train()
        perm = torch.randperm(n, generator=generator).to(device)
        totals = np.zeros(2)
        usage = [torch.zeros(spec.codebook_size, dtype=torch.long, device=device) for _ in range(spec.levels)]
        for start in range(0, n, spec.batch_size):
            batch = x_t[perm[start : start + spec.batch_size]]
            x_hat, vq_loss, codes = model(batch, spec.beta, quantize=quantizing)
            # summed over dimensions, like the VQ terms: a per-dimension mean would be ~1/dim
            # of them and the decoder would stop learning (method.md, section 3)
            recon = ((batch - x_hat) ** 2).sum(1).mean()
            loss = recon + vq_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals += np.array([recon.item(), vq_loss.item()]) * len(batch)
            if codes is not None:
                for level in range(spec.levels):
                    usage[level] += torch.bincount(codes[:, level], minlength=spec.codebook_size)
        recon_avg, vq_avg = totals / n
        restarted = 0
        if quantizing and spec.dead_code_restart and epoch < spec.epochs - 1:
            model.eval()
            restarted = _restart_dead_codes(model, _latents(model, x_t), generator)
            restarted_total += restarted
        used = [int((u > 0).sum()) for u in usage] if quantizing else []
        log.append({"epoch": epoch + 1, "recon": round(float(recon_avg), 6), "vq": round(float(vq_avg), 6),
                    "used": used, "restarted": restarted})
        elapsed = time.perf_counter() - started
        yield Metric("reconstruction loss", float(recon_avg), epoch + 1, elapsed)
        if quantizing:
            yield Metric("quantisation loss", float(vq_avg), epoch + 1, elapsed)
        message = f"recon {recon_avg:.4f}" + (f", vq {vq_avg:.4f}, codes used {'/'.join(map(str, used))}"
                                              if quantizing else " (warm-up)")
        yield Progress(stage, epoch + 1, spec.epochs, message)

    cancel.raise_if_cancelled()
    model.eval()
    books = [b.detach().cpu().numpy().astype(np.float32).copy() for b in model.codebooks]
    z, codes = _rqvae_encode(model, x_t, books)
    info: dict = {}
    if spec.unique_last_level:
        info.update(_unmatched_collisions(codes))
        last = spec.levels - 1
        residual_before_last = z - sum(books[j][codes[:, j]] for j in range(last)) if last else z
        codes[:, last], info["last_level_reassigned"] = unique_last_codes(
            codes[:, :last], residual_before_last, books[last], codes[:, last])
    quantized = sum(books[j][codes[:, j]] for j in range(spec.levels))
    with torch.no_grad():
        recon = model.decoder(torch.from_numpy(np.ascontiguousarray(quantized, dtype=np.float32)).to(device))
    state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    info["fit_seconds"] = round(time.perf_counter() - started, 3)
    info["restarted_codes"] = restarted_total
    info["final_epoch"] = log[-1] if log else {}
    return FittedQuantizer("rq-vae", spec, codes, books, x, recon.cpu().numpy().astype(np.float32), state, info)


def _kmeans_init(model, x_t, spec: RQVAESpec, generator) -> None:
    """Set the codebooks to residual k-means centroids of many items' latents."""
    import torch

    n = len(x_t)
    if n > spec.kmeans_init_items:
        pick = torch.randperm(n, generator=generator)[: spec.kmeans_init_items].to(x_t.device)
        sample = x_t[pick]
    else:
        sample = x_t
    model.eval()
    z = _latents(model, sample).cpu().numpy().astype(np.float32)
    km_spec = RQKMeansSpec(levels=spec.levels, codebook_size=spec.codebook_size, normalize=False,
                           balanced="none", unique_last_level=False, seed=spec.seed)
    residual = z
    with torch.no_grad():
        for level in range(spec.levels):
            centroids = _kmeans_centroids(residual, spec.codebook_size, km_spec, spec.seed + level)
            model.codebooks.data[level] = torch.from_numpy(centroids).to(model.codebooks.device)
            residual = residual - centroids[nearest_codes(residual, centroids)]
