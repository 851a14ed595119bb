"""gpt-tiny: causal mask, training beats the unigram baseline, heads and neurons removed
physically equal masked, sequence KD loss, greedy generation, magnitude masks."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import prune as torch_prune

from explorer.config import PruneConfig
from explorer.data.text import load_pydoc_text, unigram_perplexity
from explorer.engine.heads import (
    gpt_prunable_names,
    head_scores,
    head_sparsity,
    magnitude_prune,
    mask_heads,
    plan_head_removal,
    remove_heads,
)
from explorer.engine.lm import (
    build_gpt,
    build_student,
    evaluate_lm,
    generate,
    gpt_tiny,
    next_char_distribution,
    sequence_kd_loss,
    teacher_layers,
    train_lm,
)
from explorer.engine.prune import MagnitudeIndex, compute_masks
from explorer.models.gpt import GPT, GPTConfig, count_params, gpt_from_state_dict

CONTEXT = 32


@pytest.fixture(scope="module")
def corpus():
    torch.set_num_threads(1)
    return load_pydoc_text(context=CONTEXT, seed=0)


@pytest.fixture(scope="module")
def trained(corpus):
    """A 2-layer, 4-head, width-64 model (~0.1M parameters) after 300 steps."""
    torch.set_num_threads(1)
    model = build_gpt(len(corpus.vocab), CONTEXT, n_layers=2, n_heads=4, d_model=64, seed=0)
    assert count_params(model)[0] <= 500_000
    before = evaluate_lm(model, corpus)["perplexity"]
    train_lm(model, corpus, 300, batch_size=32, lr=3e-3, seed=0)
    return model, before


def test_corpus_split_is_by_topic_and_seeded(corpus):
    """Each topic lands in exactly one split; the split depends on the seed only."""
    from pydoc_data.topics import topics

    names = [set(corpus.topics[s]) for s in ("train", "val", "test")]
    assert names[0].isdisjoint(names[1]) and names[0].isdisjoint(names[2])
    assert names[1].isdisjoint(names[2])
    assert set.union(*names) == set(topics)
    assert all(names)
    val_text = corpus.vocab.decode(corpus.val)
    train_text = corpus.vocab.decode(corpus.train)
    for topic in corpus.topics["val"]:
        assert topics[topic] in val_text
        assert topics[topic] not in train_text
    again = load_pydoc_text(context=CONTEXT, seed=0)
    assert again.topics == corpus.topics and torch.equal(again.val, corpus.val)
    assert load_pydoc_text(context=CONTEXT, seed=1).topics != corpus.topics
    assert 0.05 < len(corpus.val) / (len(corpus.train) + len(corpus.val)) < 0.25


def test_vocab_round_trip_and_unknown(corpus):
    """Encoding then decoding returns the text; characters outside the vocab map to id 0."""
    text = "def f(x):\n    return x"
    assert corpus.vocab.decode(corpus.vocab.encode(text)) == text
    assert corpus.vocab.encode("\u2603").tolist() == [0]


def test_batches_are_seeded_shifted_windows(corpus):
    """y is x shifted by one character; the same seed gives the same batch."""
    x, y = corpus.get_batch("train", 8, torch.Generator().manual_seed(3))
    x2, _ = corpus.get_batch("train", 8, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (8, CONTEXT) and x.dtype == torch.long
    assert torch.equal(x, x2)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_text_file_and_bad_text(tmp_path):
    """A user's file loads and splits; empty or too-short text is a clear ValueError."""
    from explorer.data.text import load_text_file

    path = tmp_path / "story.txt"
    path.write_text("Once upon a time there was a small model. " * 200)
    corpus = load_text_file(path, context=16)
    assert len(corpus.train) > len(corpus.val) > 16
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        load_text_file(tmp_path / "empty.txt")
    (tmp_path / "short.txt").write_text("too short")
    with pytest.raises(ValueError, match="characters"):
        load_text_file(tmp_path / "short.txt", context=16)
    with pytest.raises(ValueError, match="does not exist"):
        load_text_file(tmp_path / "missing.txt")


def test_config_validation():
    """Bad sizes raise ValueError naming the value."""
    with pytest.raises(ValueError, match="multiple of n_heads"):
        GPTConfig(vocab_size=10, context=8, n_heads=3, d_model=64)
    with pytest.raises(ValueError, match="n_layers"):
        GPTConfig(vocab_size=10, context=8, n_layers=0)


def test_causal_mask_holds():
    """Changing a future token never changes the outputs at earlier positions."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context=16, n_layers=2, n_heads=2, d_model=32)).eval()
    ids = torch.randint(20, (3, 16))
    out = model(ids)
    for j in (0, 5, 15):
        changed = ids.clone()
        changed[:, j] = (changed[:, j] + 1) % 20
        out2 = model(changed)
        assert torch.equal(out[:, :j], out2[:, :j])
        assert not torch.allclose(out[:, j], out2[:, j])


def test_training_beats_unigram_baseline(corpus, trained):
    """300 steps bring validation perplexity well below the unigram perplexity."""
    model, before = trained
    unigram = unigram_perplexity(corpus)
    after = evaluate_lm(model, corpus)
    assert before > unigram  # an untrained model is worse than counting characters
    assert after["perplexity"] < 0.6 * unigram
    assert after["accuracy"] > 0.3


def test_removed_heads_equal_masked_heads(corpus, trained):
    """Physically removing heads gives the masked model's outputs (1e-5)."""
    model = copy.deepcopy(trained[0]).eval()
    plan = plan_head_removal(head_scores(model, "l1"), 0.5, scope="global")
    assert sum(map(len, plan.values())) == 4 and all(len(h) < 4 for h in plan.values())
    x, _ = corpus.windows("val", 4)
    masked = copy.deepcopy(model)
    mask_heads(masked, plan)
    remove_heads(model, plan)
    assert model.heads_per_layer() == [4 - len(plan[i]) for i in range(2)]
    assert torch.allclose(model(x), masked(x), atol=1e-5)
    assert count_params(model)[0] < count_params(masked)[0]
    for i, heads in plan.items():  # removed heads show as fully pruned in the heads view
        assert [head_sparsity(model)[i][h] for h in heads] == [1.0] * len(heads)
    model.remove_neurons(0, list(range(100)))
    buffer = io.BytesIO()  # a shrunk model survives save -> load and deepcopy
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = gpt_from_state_dict(model.config, torch.load(buffer))
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(copy.deepcopy(model)(x), model(x))
    model.remove_heads(0, list(range(model.blocks[0].attn.n_heads)))  # a block may lose all
    assert torch.isfinite(model(x)).all()


@torch.no_grad()
def test_loss_ranking_scores_every_head(corpus, trained):
    """Loss ranking: one score per head, each the loss increase when it alone is masked."""
    model = copy.deepcopy(trained[0])
    batch = corpus.windows("val", 8)
    scores = head_scores(model, "loss", batch=batch)
    assert [s.numel() for s in scores] == [4, 4]
    base = F.cross_entropy(model(batch[0]).flatten(0, 1), batch[1].flatten())
    mask_heads(model, {1: [2]})
    masked = F.cross_entropy(model(batch[0]).flatten(0, 1), batch[1].flatten())
    assert float(masked - base) == pytest.approx(float(scores[1][2]), abs=1e-5)


def test_removed_neurons_equal_masked_neurons(corpus, trained):
    """Removing MLP neurons (fc rows + proj columns) equals masking their activations."""
    model = copy.deepcopy(trained[0]).eval()
    drop = [0, 3, 17, 200, 255]
    masked = copy.deepcopy(model)
    masked.blocks[1].mlp.neuron_mask[drop] = 0.0
    model.remove_neurons(1, drop)
    x, _ = corpus.windows("val", 4)
    assert model.blocks[1].mlp.fc.out_features == 256 - len(drop)
    assert torch.allclose(model(x), masked(x), atol=1e-5)


def test_sequence_kd_loss_matches_per_token_formula():
    """(1-a) CE + a T^2 KL, averaged over every token, written out by hand."""
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    y = torch.randint(7, (2, 5))
    temp, alpha = 3.0, 0.7
    total = 0.0
    for b in range(2):
        for i in range(5):
            ce = -torch.log_softmax(s[b, i], 0)[y[b, i]]
            p_t = torch.softmax(t[b, i] / temp, 0)
            kl = (p_t * (torch.log(p_t) - torch.log_softmax(s[b, i] / temp, 0))).sum()
            total += (1 - alpha) * ce + alpha * temp ** 2 * kl
    expected = total / 10
    got = sequence_kd_loss(s, t, y, temp, alpha)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
    no_t2 = sequence_kd_loss(s, t, y, temp, 1.0, t_squared=False)
    assert float(no_t2) * temp ** 2 == pytest.approx(
        float(sequence_kd_loss(s, t, y, temp, 1.0)), rel=1e-5)


def test_generate_is_deterministic_at_temperature_zero(corpus, trained):
    """Greedy generation repeats exactly; sampling repeats with the same seed."""
    model = trained[0]
    a = generate(model, corpus.vocab, "The ", 40)
    assert a == generate(model, corpus.vocab, "The ", 40) and len(a) == 40
    b = generate(model, corpus.vocab, "The ", 40, temperature=1.0, seed=5)
    assert b == generate(model, corpus.vocab, "The ", 40, temperature=1.0, seed=5)
    # Longer than the context: the window slides.
    assert len(generate(model, corpus.vocab, "x" * 50, 5)) == 5
    dist = next_char_distribution(model, corpus.vocab, "The ", temperature=2.0, top_k=5)
    assert len(dist) == 5 and dist[0][1] >= dist[-1][1]


def test_magnitude_masks_reuse_prune_module(trained):
    """compute_masks on a dict of the GPT's Linear weights equals torch's global pruning."""
    model = copy.deepcopy(trained[0])
    names = gpt_prunable_names(model)
    assert len(names) == 2 * 6 and "tok_emb.weight" not in names
    params = dict(model.named_parameters())
    weights = {n: params[n].detach().clone() for n in names}
    result = compute_masks(MagnitudeIndex(weights), PruneConfig(sparsity=0.8, scope="global"))
    oracle = copy.deepcopy(model)
    modules = dict(oracle.named_modules())
    pairs = [(modules[n.rsplit(".", 1)[0]], "weight") for n in names]
    torch_prune.global_unstructured(pairs, torch_prune.L1Unstructured, amount=0.8)
    for n, (module, _) in zip(names, pairs):
        assert torch.equal(result.masks[n], module.weight_mask.bool())
    # The helper applies the same masks in place; embeddings stay dense by default.
    magnitude_prune(model, PruneConfig(sparsity=0.5, scope="layer"))
    for n in names:
        w = dict(model.named_parameters())[n]
        assert int((w == 0).sum()) == round(0.5 * w.numel())
    assert int((model.tok_emb.weight == 0).sum()) == 0


def test_student_from_every_other_teacher_layer():
    """init='teacher' copies teacher blocks 0 and 2 of 4 (DistilBERT) and the embeddings."""
    teacher = build_gpt(30, 16, n_layers=4, n_heads=2, d_model=32, seed=1)
    assert teacher_layers(4, 2) == [0, 2] and teacher_layers(6, 3) == [0, 2, 4]
    student = build_student(teacher, 2, init="teacher")
    for s_block, t_idx in zip(student.blocks, [0, 2]):
        for (n, a), (_, b) in zip(s_block.state_dict().items(),
                                  teacher.blocks[t_idx].state_dict().items()):
            assert torch.equal(a, b), n
    assert torch.equal(student.tok_emb.weight, teacher.tok_emb.weight)
    assert gpt_tiny(30, 16).config.d_model == 128
    assert gpt_tiny(30, 16, "gpu", n_layers=2).config.n_layers == 2
    narrow = build_student(teacher, 2, d_model=16, init="random")
    assert narrow.config.d_model == 16
    with pytest.raises(ValueError, match="width"):
        build_student(teacher, 2, d_model=16, init="teacher")


def test_report_rows_have_the_promised_columns():
    """The report has every row the issue asks for, with sizes that match what was done."""
    from explorer.studies.lm_report import gpt_report

    report = gpt_report(quick=True, steps=5, threads=1)
    rows = {r["model"].split(" (")[0]: r for r in report["rows"]}
    assert len(report["rows"]) == 10
    teacher = rows["teacher"]
    half = rows["teacher, 50% unstructured"]
    assert half["params"] == teacher["params"] and half["nonzero"] < 0.6 * teacher["params"]
    heads = [r for r in report["rows"] if "heads removed" in r["model"]]
    assert all(r["params"] < teacher["params"] for r in heads)
    assert all(len(r["sample"]) == 60 and r["val_perplexity"] > 1 for r in report["rows"])
    assert report["markdown"].count("\n") == 11
