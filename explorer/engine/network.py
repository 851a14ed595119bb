"""The network as a picture (issue 28): layers as columns of neurons, the strongest
connections as links, computed from the dense base's weights and the masks in force.

Pure functions over weight tensors, testable without widgets. The link set depends on
the dense base only (`network_picture`, once per base); a slider move only changes how
much of each link survives (`network_state`), so a front end redraws opacities, never
positions. A neuron is an output row of a layer (a channel of a convolution, its kernel
summed); an attention projection's unit is a head (`heads`: its rows grouped per head,
a fused q|k|v projection's three parts of a head together); a big layer's units are
binned into at most `max_nodes` groups and a link is the block of weights between two
groups. Each output group keeps its `k` strongest
incoming links in the dense base (fewer when the whole picture would pass `max_links`).

A slider move must cost little on a 10M-parameter model (issue 28: under 50 ms), so a
move never walks the weights: each link keeps the flat indices of its block's `SAMPLE`
largest dense weights, each neuron those of its row's `ROW_SAMPLE` largest, and a move
gathers only those. Exact for blocks (rows) no larger than that; otherwise a link is
drawn as gone when its strongest dense weights all are, which is exact under magnitude
pruning (a block's largest weight is the last of it to go) and for structured pruning
(whole rows go).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

MAX_NODES = 16  # neurons (or groups of neurons) per column
TOP_K = 3  # incoming links kept per neuron
MAX_TOTAL_NODES = 240  # a deep model gets fewer groups per column (at least 4)
MAX_LINKS = 600  # links in the whole picture (about 20 bytes each when redrawn)
SAMPLE = 64  # dense weights per link read on each move (its block's largest)
ROW_SAMPLE = 16  # dense weights per neuron read on each move (its row's largest)


@dataclass(frozen=True)
class NetworkPicture:
    """Node positions and the fixed link set of one dense base."""

    layers: tuple[str, ...]  # one column of outputs each, after the input column
    node_x: np.ndarray  # int, the column of each node (0: the first layer's inputs)
    node_y: np.ndarray  # int, centred positions in a column (2 apart)
    node_text: tuple[str, ...]  # hover: the layer and the neurons a node stands for
    row_starts: tuple[np.ndarray, ...]  # per layer: first output row of each group
    col_starts: tuple[np.ndarray, ...]  # per layer: first input column of each group
    link_layer: np.ndarray  # int, the layer index of each link
    link_row: np.ndarray  # int, output group of the link within its layer
    link_col: np.ndarray  # int, input group of the link within its layer
    link_src: np.ndarray  # int, node index the link starts at
    link_dst: np.ndarray  # int, node index the link ends at
    strength: np.ndarray  # float in [0.2, 1]: the dense block's |w| within its layer's range
    dense_block: np.ndarray  # float, the dense block's sum of |w|
    first_node: np.ndarray  # int, index of each column's first node (columns + 1 entries)
    link_index: tuple[torch.Tensor, ...]  # per layer (links, SAMPLE): flat weight indices
    link_weight: tuple[torch.Tensor, ...]  # per layer (links, SAMPLE): their dense |w|
    row_index: tuple[torch.Tensor, ...]  # per layer (rows, ROW_SAMPLE): flat indices
    shapes: tuple[tuple[int, ...], ...]  # per layer: the weight's shape
    row_order: tuple[np.ndarray | None, ...] = ()  # per layer: rows in drawn order (heads)


@dataclass(frozen=True)
class NetworkState:
    """What survives now: a share per link, a flag per node."""

    kept: np.ndarray  # float in [0, 1], per link: kept share of its sampled dense |w|
    alive: np.ndarray  # bool, per node: some weight of its rows is kept

    def opacity(self, picture: NetworkPicture) -> np.ndarray:
        """Per link: its dense strength times its kept share (0 exactly when all pruned)."""
        return picture.strength * self.kept


def connection_matrix(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """|w| as (outputs, inputs): a convolution's kernel summed, float64."""
    w = torch.as_tensor(weight).detach()
    if w.dim() < 2:
        raise ValueError(f"a connection matrix needs a weight of 2 or more dimensions, got "
                         f"shape {tuple(w.shape)}")
    # summed in the weight's dtype, then widened: a float64 copy of a 10M-weight layer
    # was a quarter of a big model's picture
    return w.abs().reshape(w.shape[0], w.shape[1], -1).sum(-1).cpu().numpy().astype(np.float64)


def group_starts(n: int, groups: int) -> np.ndarray:
    """First index of each of min(n, groups) near-equal groups of n items."""
    m = max(1, min(n, groups))
    return np.unique(np.linspace(0, n, m + 1).astype(np.int64)[:-1])


def block_sums(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.add.reduceat(np.add.reduceat(matrix, rows, axis=0), cols, axis=1)


def _column_nodes(size: int, max_nodes: int, head: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None, list[tuple[str, str]]]:
    """(first drawn row of each node, the rows in drawn order or None when in place, a
    (word, "a-b") pair per node). Heads: rows sorted by head, a node per head or per bin
    of heads (never a head split)."""
    if head is None:
        starts = group_starts(size, max_nodes)
        ends = np.append(starts[1:], size)
        return starts, None, [("neuron" if e - s == 1 else "neurons",
                               f"{s}" + (f"-{e - 1}" if e - s > 1 else ""))
                              for s, e in zip(starts.tolist(), ends.tolist())]
    if len(head) != size:
        raise ValueError(f"heads give {len(head)} rows; the layer has {size}")
    order = np.argsort(head, kind="stable")
    ids, first = np.unique(head[order], return_index=True)
    bins = group_starts(len(ids), max_nodes)
    ends = np.append(bins[1:], len(ids))
    words = [("head" if e - b == 1 else "heads",
              f"{ids[b]}" + (f"-{ids[e - 1]}" if e - b > 1 else ""))
             for b, e in zip(bins.tolist(), ends.tolist())]
    return first[bins], order, words


def network_picture(base: Mapping[str, torch.Tensor | np.ndarray], layers: Sequence[str],
                    k: int = TOP_K, max_nodes: int = MAX_NODES,
                    max_links: int = MAX_LINKS,
                    heads: Mapping[str, np.ndarray] | None = None) -> NetworkPicture:
    """Nodes and the top-`k` links per output group of the dense `base`, for `layers` in
    forward order (those of fewer than 2 dimensions are left out). A layer whose inputs
    do not match the previous column (a residual or attention branch) is drawn onto it
    proportionally. `heads` maps an attention projection's name to the head of each of
    its output rows (`engine.attention.head_rows`): its nodes are heads."""
    if k < 1 or max_nodes < 1:
        raise ValueError(f"k and max_nodes must be at least 1, got k={k}, "
                         f"max_nodes={max_nodes}")
    names = [n for n in layers if torch.as_tensor(base[n]).dim() >= 2]
    if not names:
        raise ValueError(f"no layer of 2 or more dimensions among {list(layers)}")
    heads = heads or {}
    mats = [connection_matrix(base[n]) for n in names]
    max_nodes = min(max_nodes, max(4, MAX_TOTAL_NODES // (len(names) + 1)))
    nodes = [_column_nodes(mats[0].shape[1], max_nodes)]
    nodes += [_column_nodes(m.shape[0], max_nodes, _heads_of(heads, n))
              for n, m in zip(names, mats)]
    columns = [starts for starts, _, _ in nodes]
    orders = tuple(order for _, order, _ in nodes[1:])
    mats = [m if o is None else m[o] for m, o in zip(mats, orders)]
    sizes = [mats[0].shape[1]] + [m.shape[0] for m in mats]
    first = np.cumsum([0] + [len(c) for c in columns])
    xs, ys, text = [], [], []
    for c, (starts, order, words) in enumerate(nodes):
        m = len(starts)
        xs.append(np.full(m, c))
        ys.append(2 * np.arange(m) - (m - 1))
        what = "inputs" if c == 0 else names[c - 1]
        total = sizes[c] if order is None else f"{len(np.unique(heads[what]))} heads"
        text += [f"{what}: {word} {span} of {total}" for word, span in words]
    outputs = sum(len(c) for c in columns[1:])
    k = max(1, min(k, max_links // max(outputs, 1)))
    rows_all, cols_all, index_all, weight_all, row_all = [], [], [], [], []
    parts: dict[str, list] = {key: [] for key in ("layer", "row", "col", "src", "dst",
                                                  "strength", "dense")}
    for i, mat in enumerate(mats):
        rows = columns[i + 1]
        prev = len(columns[i])
        cols = group_starts(mat.shape[1], prev)
        blocks = block_sums(mat, rows, cols)
        top = np.argsort(-blocks, axis=1, kind="stable")[:, :k]
        r = np.repeat(np.arange(len(rows)), top.shape[1])
        col = top.ravel()
        dense = blocks[r, col]
        # an input group drawn on the previous column's node at the same height
        src = first[i] + (col * prev) // len(cols)
        parts["layer"].append(np.full(len(r), i))
        parts["row"].append(r)
        parts["col"].append(col)
        parts["src"].append(src)
        parts["dst"].append(first[i + 1] + r)
        # spread over (0.2, 1] within the layer: binned blocks differ little in |w|, and
        # plain ratios would draw every link near full opacity
        low, high = float(dense.min(initial=0.0)), float(dense.max(initial=0.0))
        spread = (dense - low) / (high - low) if high > low else np.ones_like(dense)
        parts["strength"].append(np.where(dense > 0, 0.2 + 0.8 * spread, 0.0))
        parts["dense"].append(dense)
        rows_all.append(rows)
        cols_all.append(cols)
        w = torch.as_tensor(base[names[i]]).detach()
        order = orders[i]
        index, weight = _link_samples(w if order is None else w[torch.from_numpy(order)],
                                      rows, cols, r, col)
        flat = w.abs().reshape(w.shape[0], -1)
        strongest = (flat.topk(min(ROW_SAMPLE, flat.shape[1]), dim=1).indices
                     + flat.shape[1] * torch.arange(w.shape[0], device=w.device)[:, None])
        if order is not None:  # drawn rows back to the weight's own rows
            index = _unpermuted(index, order, int(flat.shape[1]))
            strongest = strongest[torch.from_numpy(order).to(strongest.device)]
        index_all.append(index)
        weight_all.append(weight)
        row_all.append(strongest)
    cat = {key: np.concatenate(v) for key, v in parts.items()}
    return NetworkPicture(tuple(names), np.concatenate(xs), np.concatenate(ys), tuple(text),
                          tuple(rows_all), tuple(cols_all), cat["layer"], cat["row"],
                          cat["col"], cat["src"], cat["dst"], cat["strength"],
                          cat["dense"], first, tuple(index_all), tuple(weight_all),
                          tuple(row_all), tuple(tuple(base[n].shape) for n in names),
                          orders)


def _heads_of(heads: Mapping[str, np.ndarray], name: str) -> np.ndarray | None:
    found = heads.get(name)
    return None if found is None else np.asarray(found, dtype=np.int64)


def _unpermuted(index: torch.Tensor, order: np.ndarray, width: int) -> torch.Tensor:
    """Flat indices into the rows-permuted weight, as indices into the weight itself."""
    perm = torch.from_numpy(order)
    return perm[index // width] * width + index % width


def _link_samples(w: torch.Tensor, rows: np.ndarray, cols: np.ndarray, r: np.ndarray,
                  col: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices and dense |w| of each link's block's SAMPLE largest weights (padded
    with weight 0 where a block is smaller). In NumPy: torch's threaded copies of the
    strided blocks took most of a 10M-parameter model's second on a busy machine."""
    out, inp = w.shape[0], w.shape[1]
    inner = w[0, 0].numel()
    w3 = w.detach().abs().reshape(out, inp, inner).cpu().numpy()
    row_end = np.append(rows[1:], out)
    col_end = np.append(cols[1:], inp)
    index = np.zeros((len(r), SAMPLE), dtype=np.int64)
    weight = np.zeros((len(r), SAMPLE), dtype=np.float64)
    for n, (g, h) in enumerate(zip(r.tolist(), col.tolist())):
        r0, r1, c0, c1 = int(rows[g]), int(row_end[g]), int(cols[h]), int(col_end[h])
        block = w3[r0:r1, c0:c1].reshape(-1)
        m = min(SAMPLE, block.size)
        top = np.argpartition(-block, m - 1)[:m] if m < block.size else np.arange(m)
        width = (c1 - c0) * inner
        i, rest = top // width, top % width
        j, kk = rest // inner, rest % inner
        index[n, :m] = ((i + r0) * inp + (j + c0)) * inner + kk
        weight[n, :m] = block[top]
    return torch.from_numpy(index), torch.from_numpy(weight)


def network_state(picture: NetworkPicture,
                  kept: Mapping[str, torch.Tensor | np.ndarray]) -> NetworkState:
    """Each link's kept share and each node's survival under `kept` (per layer, a tensor
    of the weight's shape whose nonzero entries are kept: a bool mask or the masked
    weights themselves; a layer left out is whole). Reads only the sampled entries."""
    share = np.ones(len(picture.link_layer))
    alive = np.ones(len(picture.node_x), dtype=bool)
    for i, name in enumerate(picture.layers):
        now = kept.get(name)
        if now is None:
            continue
        now = torch.as_tensor(now).detach()
        if tuple(now.shape) != picture.shapes[i]:
            raise ValueError(f"mask of {name!r} has shape {tuple(now.shape)}, its weight "
                             f"{picture.shapes[i]}")
        flat = now.reshape(-1)
        index, weight = picture.link_index[i], picture.link_weight[i]
        rows = picture.row_starts[i]
        # small arrays in NumPy: torch's threaded elementwise ops took 15 ms for 50k
        # entries on a busy 2-core machine
        w = weight.cpu().double().numpy()
        on = _gather(flat, index) != 0
        total = w.sum(1)
        part = (on * w).sum(1) / np.where(total > 0, total, 1.0)
        share[picture.link_layer == i] = np.clip(part, 0.0, 1.0)
        row_on = (_gather(flat, picture.row_index[i]) != 0).any(1)
        start = picture.first_node[i + 1]
        alive[start:start + len(rows)] = np.add.reduceat(row_on.astype(np.int64), rows) > 0
    return NetworkState(share, alive)


def _gather(flat: torch.Tensor, index: torch.Tensor) -> np.ndarray:
    """flat[index] as a NumPy array. On the CPU, NumPy's single-threaded gather: torch's
    parallel one took 20-30 ms for a few thousand entries on a busy 2-core machine."""
    if flat.device.type == "cpu":
        return flat.numpy()[index.numpy()]
    found = torch.index_select(flat, 0, index.reshape(-1).to(flat.device))
    return found.reshape(index.shape).cpu().numpy()
