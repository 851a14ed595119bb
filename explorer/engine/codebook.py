"""Fine-tuning a k-means codebook (Deep Compression section 3.3) with the one training loop.

Each centroid moves by the sum of the gradients of the weights that share it. Rather than
a second loop, every quantized weight gets a gradient hook that replaces its gradient by
its cluster's summed gradient (zero for pruned weights). The weights of a cluster start
equal to their centroid and then receive identical gradients, so any element-wise
optimizer (SGD, momentum, Adam, weight decay) moves them identically: they stay equal,
and each cluster's common value follows exactly the optimizer run on the centroid with
gradient sum(g). Pruned weights get a zero gradient and stay zero (the loop's masks too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn


def centroid_grads(grad: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
    """The gradient of each of the k centroids: the sum of its weights' gradients
    (index i >= 1 is centroid i - 1; index 0, a pruned weight, belongs to none)."""
    sums = torch.zeros(k + 1, dtype=grad.dtype, device=grad.device)
    sums.index_add_(0, indices.flatten().to(grad.device), grad.flatten())
    return sums[1:]


def shared_grad(grad: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
    """Every weight's gradient replaced by its centroid's (zero where pruned)."""
    per = torch.cat([grad.new_zeros(1), centroid_grads(grad, indices, k)])
    return per[indices.to(grad.device)].view_as(grad)


@contextmanager
def shared_gradients(params: Mapping[str, nn.Parameter],
                     indices: Mapping[str, torch.Tensor],
                     sizes: Mapping[str, int]) -> Iterator[None]:
    """While open, each named parameter's gradient is its cluster's summed gradient."""
    handles = []
    try:
        for name, idx in indices.items():
            k = sizes[name]
            handles.append(params[name].register_hook(
                lambda g, idx=idx, k=k: shared_grad(g, idx, k)))
        yield
    finally:
        for handle in handles:
            handle.remove()
