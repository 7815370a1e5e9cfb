"""Residual quantisers that turn item embeddings into Semantic IDs: RQ-KMeans and RQ-VAE.

Both quantise coarse to fine: level 1 picks the codeword nearest to the vector, level 2 the
codeword nearest to what is left (the residual), and so on (method.md, section 1).

- **RQ-KMeans** (the default; the joint-search paper found it far better than RQ-VAE for its
  use): one k-means per level on the residuals, run by FAISS (or scikit-learn), started from
  k-means++. Plain residual k-means leaves 73-77% of Beauty's items with a unique tuple
  (collision groups of up to 12-22 items); three options, all on by default, do better
  (figures in benchmarks/README.md):

  * ``coarse_dims``: level 1 clusters the items on their leading principal components
    (32 by default) and keeps the clusters' full-space means as codewords. The leading
    components carry the broad topics: Beauty's level-1 category purity goes from 0.864 to
    0.886 (mean of 3 seeds), for ~5% more reconstruction error.
  * ``balanced``: after the library's k-means, a few rounds of *balanced* assignment (an
    entropic optimal-transport / Sinkhorn step towards equal cluster sizes, then the centroid
    update), which evens out code usage. ``deep`` balances levels 2..L only, so level 1
    stays a semantic clustering (balancing level 1 costs category purity).
  * ``unique_last_level``: within every group of items that share the first L-1 codes, the
    last codes are chosen by a minimum-cost matching (``scipy.optimize.linear_sum_assignment``
    on residual distances) so that they are distinct whenever the group has at most K
    items: an exact version of LC-Rec's uniform last-level mapping. It moves only items of
    colliding groups, each to the nearest codeword still free in its group.

- **RQ-VAE** (TIGER): PyTorch MLP encoder to a 32-d latent, residual quantisation with
  3 x 256 codebooks, mirrored decoder, ``beta = 0.25``. The pitfalls of section 3 are handled:
  reconstruction summed over dimensions (a per-dimension mean is drowned by the quantisation
  loss), codebook loss on the non-detached codeword, codebooks initialised by residual
  k-means over the latents of many items (after a short autoencoder warm-up, not over one
  batch), dead codes restarted after every epoch.

Every fit is a generator of events (``Progress`` per level / epoch) that checks a cancel
token, and is reproducible from ``spec.seed``. :func:`quantize_project` runs a fit on a
project's embeddings, adds the dedup level, measures the run's health and stores everything
in one transaction; :func:`encode_with_run` gives new vectors codes from a stored run.

Modules: :mod:`.spec` (settings and presets), :mod:`.residual` (what both share),
:mod:`.rq_kmeans`, :mod:`.rq_vae` and :mod:`.fit` (the entry points); their public names are
importable from this package.
"""

from .fit import encode_with_run, fit_quantizer, method_of, quantize_project
from .residual import (FittedQuantizer, nearest_codes, prepare_vectors, principal_subspace, project, residual_encode,
                       sq_distances, thread_limit, unique_last_codes)
from .rq_kmeans import balanced_assign, faiss_gpus, fit_rq_kmeans
from .rq_vae import fit_rq_vae
from .spec import (BALANCED_CHOICES, MAX_DEFAULT_CODEBOOK, METHODS, MIN_DEFAULT_CODEBOOK, PRESETS, RQKMeansSpec,
                   RQVAESpec, Spec, default_codebook_size, default_levels, describe_presets, make_spec, sized_spec,
                   spec_from_dict, spec_to_dict)


__all__ = [
    "METHODS", "BALANCED_CHOICES", "RQKMeansSpec", "RQVAESpec", "Spec", "PRESETS", "MIN_DEFAULT_CODEBOOK",
    "MAX_DEFAULT_CODEBOOK", "default_codebook_size", "default_levels", "sized_spec", "make_spec", "spec_to_dict",
    "spec_from_dict", "describe_presets", "FittedQuantizer", "prepare_vectors", "thread_limit", "sq_distances",
    "nearest_codes", "principal_subspace", "project", "residual_encode", "unique_last_codes", "fit_rq_kmeans",
    "balanced_assign", "faiss_gpus", "fit_rq_vae", "fit_quantizer", "method_of", "encode_with_run", "quantize_project",
]
