"""The network as a picture (issue 28): the pure picture of a base and its masks, and the
app's network panel following the Snapshot as the slider moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.engine.network import SAMPLE, network_picture, network_state
from explorer.ui import plots as P
from explorer.ui.model_view import link_levels


def small_mlp() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"a": torch.randn(5, 4), "b": torch.randn(3, 5), "c": torch.randn(2, 3)}


def test_small_mlp_every_neuron_a_node_and_top_k_links_per_neuron():
    base = small_mlp()
    pic = network_picture(base, ["a", "b", "c"], k=2, max_nodes=16)
    assert np.bincount(pic.node_x).tolist() == [4, 5, 3, 2]  # inputs, then each layer
    for i, name in enumerate(pic.layers):
        w = base[name].abs().numpy()
        sel = pic.link_layer == i
        rows, cols = pic.link_row[sel], pic.link_col[sel]
        assert np.bincount(rows).tolist() == [2] * w.shape[0]  # k per output neuron
        for r in range(w.shape[0]):  # exactly the two largest |w| of the dense row
            assert set(cols[rows == r]) == set(np.argsort(-w[r])[:2])
        assert (pic.node_x[pic.link_src[sel]] == i).all()
        assert (pic.node_x[pic.link_dst[sel]] == i + 1).all()


def test_pruned_links_are_exactly_those_the_mask_removes():
    base = small_mlp()
    pic = network_picture(base, ["a", "b", "c"], k=3)
    torch.manual_seed(1)
    masks = {n: torch.rand_like(w) > 0.5 for n, w in base.items()}
    state = network_state(pic, masks)
    opacity = state.opacity(pic)
    for i, name in enumerate(pic.layers):
        sel = pic.link_layer == i
        kept = masks[name][pic.link_row[sel], pic.link_col[sel]].numpy()
        assert ((opacity[sel] == 0) == ~kept).all()
        assert (state.kept[sel][kept] == 1).all()
    # the pruned links sit in the faded trace, the kept ones in the level traces
    levels = link_levels(pic, state)
    assert len(levels[-1][0]) == 3 * int((opacity == 0).sum())
    assert sum(len(xs) for xs, _ in levels[:-1]) == 3 * int((opacity > 0).sum())


def test_structurally_removed_neurons_vanish_and_lose_their_links():
    base = small_mlp()
    pic = network_picture(base, ["a", "b", "c"], k=3)
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in base.items()}
    masks["a"][[1, 3]] = False  # neurons 1 and 3 of layer a removed
    state = network_state(pic, masks)
    column = pic.node_x == 1
    assert state.alive[column].tolist() == [True, False, True, False, True]
    assert state.alive[~column].all()
    into = np.isin(pic.link_dst, np.flatnonzero(column)[[1, 3]])
    assert (state.opacity(pic)[into] == 0).all() and (state.kept[~into] == 1).all()


def test_a_big_layer_is_binned_and_the_picture_stays_small():
    torch.manual_seed(0)
    base = {"conv": torch.randn(64, 3, 3, 3), "fc": torch.randn(300, 1000)}
    pic = network_picture(base, ["conv", "fc"], k=3, max_nodes=16, max_links=40)
    # the conv's 3 input channels, its 64 channels and the fc's 300 outputs, binned to 16
    assert np.bincount(pic.node_x).tolist() == [3, 16, 16]
    assert len(pic.link_layer) <= 40 + 16  # k drops to 1 to fit max_links
    masks = {"conv": torch.ones(64, 3, 3, 3, dtype=torch.bool),
             "fc": torch.zeros(300, 1000, dtype=torch.bool)}
    assert pic.row_starts[1][:3].tolist() == [0, 18, 37]  # near-equal bins of 300 rows
    masks["fc"][:18] = True  # only the first bin keeps weights
    state = network_state(pic, masks)
    assert state.alive[pic.node_x == 2].tolist() == [True] + [False] * 15
    # magnitude pruning: a big block is drawn gone exactly when all of it is pruned
    fc = base["fc"].abs()
    masks["fc"] = fc >= fc.flatten().kthvalue(fc.numel() - 300).values
    state = network_state(pic, masks)
    sel = pic.link_layer == 1
    blocks = np.add.reduceat(np.add.reduceat(masks["fc"].numpy().astype(int),
                                             pic.row_starts[1], 0), pic.col_starts[1], 1)
    left = blocks[pic.link_row[sel], pic.link_col[sel]]
    assert ((state.kept[sel] == 0) == (left == 0)).all() and (left == 0).any()
    assert "neurons 0-17 of 300" in pic.node_text[int(np.flatnonzero(pic.node_x == 2)[0])]


def test_bad_input_names_the_bad_value():
    with pytest.raises(ValueError, match="max_nodes=0"):
        network_picture(small_mlp(), ["a"], max_nodes=0)
    pic = network_picture(small_mlp(), ["a"])
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        network_state(pic, {"a": torch.ones(2, 2, dtype=torch.bool)})


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=2, max_size=5), st.integers(1, 8),
       st.integers(1, 4), st.floats(0.0, 1.0), st.integers(0, 2**16), st.booleans())
def test_any_chain_link_count_bounds_and_kept_share(sizes, max_nodes, k, p, seed, heads):
    """For any chain, with or without any grouping of rows into heads: at most max_nodes
    per column, at most k links per output node, each link's kept share in [0, 1] and 0
    exactly when its block (of the rows in drawn order) keeps nothing."""
    gen = torch.Generator().manual_seed(seed)
    base = {f"l{i}": torch.randn(o, n, generator=gen)
            for i, (n, o) in enumerate(zip(sizes, sizes[1:]))}
    masks = {n: torch.rand(w.shape, generator=gen) >= p for n, w in base.items()}
    groups = {n: torch.randint(0, 5, (w.shape[0],), generator=gen).numpy()
              for n, w in base.items()} if heads else None
    pic = network_picture(base, list(base), k=k, max_nodes=max_nodes, heads=groups)
    assert np.bincount(pic.node_x).max() <= max_nodes
    assert np.bincount(pic.link_dst).max() <= k
    state = network_state(pic, masks)
    assert ((state.kept >= 0) & (state.kept <= 1)).all()
    for i, name in enumerate(pic.layers):
        sel = np.flatnonzero(pic.link_layer == i)
        rows, cols = pic.row_starts[i], pic.col_starts[i]
        m = masks[name].numpy().astype(int)
        if pic.row_order[i] is not None:
            m = m[pic.row_order[i]]
        kept = np.add.reduceat(np.add.reduceat(m, rows, 0), cols, 1)[
            pic.link_row[sel], pic.link_col[sel]]
        size = np.add.reduceat(np.add.reduceat(np.ones_like(m), rows, 0), cols, 1)[
            pic.link_row[sel], pic.link_col[sel]]
        gone = state.kept[sel] == 0
        assert gone[kept == 0].all()  # nothing kept: always drawn as gone
        small = size <= SAMPLE  # every weight of the block read: exact
        assert (gone[small] == (kept[small] == 0)).all()


def _panel(app) -> tuple[list[int], int, list]:
    """Links per opacity trace, the pruned trace last; hidden neurons; neuron opacities."""
    fig = app.fig
    counts = [len(fig.data[i].x) // 3 for i in P.LINKS]
    opacity = list(fig.data[P.GRID].marker.opacity)
    return counts, sum(o == 0 for o in opacity), opacity


def test_the_network_panel_follows_the_snapshot(digits_app):
    """A slider move moves links into the faded trace exactly as the session's masks say;
    a structured prune hides the removed neurons; the selected layer is highlighted."""
    from explorer.engine.network import network_state as state_of

    app = digits_app
    app.c.slider.value = 0.0
    dense, hidden, _ = _panel(app)
    assert dense[-1] == 0 and hidden == 0 and sum(dense) > 0
    app.c.slider.value = 0.9
    app.display.settle()
    pic = app.display._picture[1]
    params = app.session.slot.params()
    truth = state_of(pic, {n: params[n] != 0 for n in pic.layers})
    counts, _, _ = _panel(app)
    assert counts[-1] == int((truth.kept == 0).sum()) > 0
    assert sum(counts) == sum(dense)  # the link set is fixed for a base
    levels = link_levels(pic, truth)
    assert [len(xs) // 3 for xs, _ in levels] == counts
    colors = app.fig.data[P.GRID].marker.color
    column = pic.layers.index(app.c.layer.value) + 1
    assert {c for c, x in zip(colors, pic.node_x) if x == column} == {app.theme.accent}
    labels = app.fig.data[P.COLUMNS]  # one per column, the selected layer's highlighted
    assert list(labels.hovertext) == ["inputs", *pic.layers]
    assert [c == app.theme.accent for c in labels.textfont.color] == [
        i == column for i in range(len(pic.layers) + 1)]
    app.c.structured.value = True  # whole neurons go: their nodes vanish
    app.display.settle()
    _, hidden, opacity = _panel(app)
    params = app.session.slot.params()
    truth = state_of(pic, {n: params[n] != 0 for n in pic.layers})
    assert hidden > 0 and [o == 0 for o in opacity] == (~truth.alive).tolist()
    app.c.structured.value = False


# ----- heads as units, column labels (issue 28) -----------------------------------------
def tiny_gpt():
    from explorer.models.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, context=8, n_layers=1, n_heads=4, d_model=8))


class FusedAttention(torch.nn.Module):
    """GPT-2's layout as models.hf leaves it: c_attn (rows q | k | v) as an nn.Linear."""

    def __init__(self, heads: int = 4, hd: int = 2) -> None:
        super().__init__()
        self.head_dim, self.split_size = hd, heads * hd
        self.c_attn = torch.nn.Linear(heads * hd, 3 * heads * hd)
        self.c_proj = torch.nn.Linear(heads * hd, heads * hd)


def test_head_rows_of_separate_and_fused_projections():
    """gpt-tiny's q/k/v rows go per head (removed heads keep their numbers); a fused
    c_attn's q, k and v rows of a head share it; other layers have no heads."""
    from explorer.engine.attention import head_rows

    model = tiny_gpt()
    rows = head_rows(model)
    assert set(rows) == {f"blocks.0.attn.{p}.weight" for p in "qkv"}
    assert rows["blocks.0.attn.q.weight"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    model.remove_heads(0, [1])
    assert head_rows(model)["blocks.0.attn.k.weight"].tolist() == [0, 0, 2, 2, 3, 3]
    fused = head_rows(FusedAttention())["c_attn.weight"]
    assert fused.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] * 3


def test_heads_are_the_units_and_a_pruned_head_vanishes():
    """An attention projection's column has a node per head; pruning all of one head's
    rows (a fused head's q, k and v rows, far apart) removes exactly that node and fades
    exactly the links into it; pruning only its q rows leaves it."""
    from explorer.engine.attention import head_rows

    module = FusedAttention()
    base = {n: p.detach() for n, p in module.named_parameters() if n.endswith("weight")}
    pic = network_picture(base, list(base), k=3, heads=head_rows(module))
    column = np.flatnonzero(pic.node_x == 1)
    assert len(column) == 4
    assert [pic.node_text[i] for i in column] == [
        f"c_attn.weight: head {h} of 4 heads" for h in range(4)]
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in base.items()}
    mask["c_attn.weight"][[2, 3, 10, 11, 18, 19]] = False  # head 1's q, k and v rows
    state = network_state(pic, mask)
    assert state.alive[column].tolist() == [True, False, True, True]
    into = pic.link_dst == column[1]
    assert into.any() and (state.opacity(pic)[into] == 0).all()
    assert (state.kept[~into] == 1).all()
    mask["c_attn.weight"][[10, 11, 18, 19]] = True  # only its q rows pruned: still there
    state = network_state(pic, mask)
    assert state.alive.all() and (state.kept[into] > 0).all()


def test_many_heads_are_binned_whole():
    """12 heads in at most 4 nodes: 3 whole heads each, named by their numbers."""
    base = {"q": torch.randn(24, 8), "o": torch.randn(8, 24)}
    pic = network_picture(base, ["q", "o"], max_nodes=4, heads={"q": np.arange(24) // 2})
    assert pic.row_starts[0].tolist() == [0, 6, 12, 18]
    assert pic.node_text[int(np.flatnonzero(pic.node_x == 1)[1])] == "q: heads 3-5 of 12 heads"


def test_column_labels_are_the_bars_short_names_with_full_names_on_hover():
    """One label slot per column, unique short names as the bars', the full name on
    hover; labels on one line never closer than the widest label, however many columns,
    the selected one always named; the end labels grow inwards."""
    from explorer.ui import model_view as V

    base = {f"blocks.{b}.attn.{p}.weight": torch.randn(8, 8) for b in range(2) for p in "qk"}
    pic = network_picture(base, list(base))
    x, y, text, hover, where = V.column_labels(pic)
    assert x == list(range(5)) and hover == ["inputs", *base]
    assert text == ["inputs", *P.short_names(list(base), 9)] and len(set(text)) == 5
    assert where[0] == "top right" and where[-1] == "top left"
    for n in (3, 8, 13, 41):
        deep = {f"layers.{i}.fc.weight": torch.randn(4, 4) for i in range(n - 1)}
        pic = network_picture(deep, list(deep))
        for selected in (-1, 1, n // 2, n - 1):
            x, y, text, hover, _ = V.column_labels(pic, selected)
            assert len(text) == len(hover) == n and (selected < 0 or text[selected])
            named = [c for c, t in enumerate(text) if t]
            widest = V.CHAR_PX * max(len(t) for t in text) + 6
            for a in named:  # same line: far enough apart (columns evenly spread)
                for b in named:
                    if a < b and y[a] == y[b]:
                        assert (b - a) * V.PANEL_PX / (n - 1) >= widest, (n, selected, a, b)
            assert len(set(t for t in text if t)) == len(named)


def test_head_rows_of_transformers_gpt2_and_llama():
    """hf: GPT-2's fused c_attn (made Linear by models.hf) and Llama's q/k/v projections,
    grouped-query k and v with their own, fewer heads."""
    transformers = pytest.importorskip("transformers")
    from explorer.engine.attention import head_rows
    from explorer.models.hf import _conv1d_to_linear

    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=50, n_embd=16, n_layer=1, n_head=4, n_positions=32, bos_token_id=0,
        eos_token_id=0))
    _conv1d_to_linear(gpt2)
    assert head_rows(gpt2)["transformer.h.0.attn.c_attn.weight"].tolist() == (
        np.repeat(np.arange(4), 4).tolist() * 3)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=0))
    rows = head_rows(llama)
    assert rows["model.layers.0.self_attn.q_proj.weight"].tolist() == np.repeat(
        np.arange(4), 4).tolist()
    assert rows["model.layers.0.self_attn.k_proj.weight"].tolist() == [0] * 4 + [1] * 4


def test_gpt_tiny_heads_pruned_by_the_session_vanish_from_its_picture():
    """Structured pruning of gpt-tiny removes half of each block's heads: exactly those
    heads' nodes vanish from q, k and v and every link into them fades (per the masks the
    session applied), and the other heads stay."""
    from explorer import Session
    from explorer.session.views import network_view

    s = Session("pydoc-text", "gpt-tiny", layers=1, heads=4)
    s.prune(sparsity=0.5, structured=True)
    pic, state = network_view(s)
    q, hd = s.model.blocks[0].attn.q.weight.detach(), s.model.blocks[0].attn.head_dim
    gone = [h for h in range(4) if not q[hd * h:hd * (h + 1)].any()]
    assert len(gone) == 2
    for p in "qkv":
        column = np.flatnonzero(pic.node_x == pic.layers.index(f"blocks.0.attn.{p}.weight") + 1)
        assert (~state.alive[column]).nonzero()[0].tolist() == gone
        into = np.isin(pic.link_dst, column[gone])
        assert into.any() and (state.opacity(pic)[into] == 0).all()
