"""`hf:PATH` causal LMs with their own BPE tokenizer (trained here), and `hf:NAME` from
the local Hugging Face cache with the hub off."""

from __future__ import annotations

import math
import shutil

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch  # noqa: E402

from explorer import Session  # noqa: E402
from explorer.data.text import load_pydoc_text  # noqa: E402
from explorer.models.bpe import train_bpe  # noqa: E402


def family(kind: str, vocab: int):
    import transformers as T

    torch.manual_seed(0)
    if kind == "gpt2":
        return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=vocab, n_embd=16, n_layer=2,
                                              n_head=4, n_positions=64))
    small = dict(vocab_size=vocab, hidden_size=16, intermediate_size=32,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 max_position_embeddings=64)
    if kind == "llama":
        return T.LlamaForCausalLM(T.LlamaConfig(**small))
    return T.Qwen2ForCausalLM(T.Qwen2Config(**small))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    corpus = load_pydoc_text(context=32)
    text = corpus.vocab.decode(corpus.train[:60_000])
    tok = train_bpe([text[i:i + 4000] for i in range(0, len(text), 4000)], 300)
    out = {}
    for kind in ("gpt2", "llama", "qwen2"):
        path = tmp_path_factory.mktemp(kind)
        family(kind, len(tok)).save_pretrained(path)
        tok.save_pretrained(path)
        out[kind] = path
    return out


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_own_tokenizer_perplexity_and_bits_per_char(folders, kind: str) -> None:
    """The corpus is the folder's tokens (decoding the val stream gives back the val
    text); perplexity is exp(loss) per token and bits per character is
    loss / ln 2 / (characters per token)."""
    s = Session("pydoc-text", f"hf:{folders[kind]}", context=32, max_train_windows=32)
    corpus = s.objective.corpus
    chars = load_pydoc_text(context=32)
    assert corpus.vocab.decode(corpus.val) == chars.vocab.decode(chars.val)
    assert corpus.chars_per_token("val") > 1.2  # BPE tokens span several characters
    snap = s.snapshot()
    assert snap.extra["perplexity"] == pytest.approx(math.exp(snap.loss))
    assert snap.extra["bits_per_char"] == pytest.approx(
        snap.loss / math.log(2) / corpus.chars_per_token("val"))
    assert snap.extra["perplexity"] > 100  # untrained, over ~300 tokens
    if kind == "llama":  # gate/up/down and q/k/v/o: every Linear pruned 2:4 by Wanda
        s.prune(criterion="wanda", pattern="2:4", calibration=8)
        assert len(s.slot.prunable) == 15
        for name in s.slot.prunable:
            groups = s.model.get_parameter(name).reshape(-1, 4)
            assert bool(((groups != 0).sum(-1) <= 2).all())
        # a saved session reopens with the folder's tokenizer: the same numbers
        snap = s.snapshot()
        back = Session.load(s.to_bytes()).snapshot()
        assert back.extra == pytest.approx(snap.extra)


def test_hf_name_from_the_local_cache_only(folders, tmp_path, monkeypatch) -> None:
    """hf:org/name opens a model already in the local HF cache; a name not there says so
    (never a download)."""
    import huggingface_hub.constants as C

    snap = tmp_path / "models--acme--tiny-gpt2" / "snapshots" / "abc123"
    shutil.copytree(folders["gpt2"], snap)
    (tmp_path / "models--acme--tiny-gpt2" / "refs").mkdir()
    (tmp_path / "models--acme--tiny-gpt2" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(C, "HF_HUB_CACHE", str(tmp_path))
    s = Session("pydoc-text", "hf:acme/tiny-gpt2", context=32, max_train_windows=16)
    assert "bits_per_char" in s.snapshot(evaluate_model=False).extra
    with pytest.raises(ValueError, match="acme/absent.*local Hugging Face cache"):
        Session("pydoc-text", "hf:acme/absent", context=32)


def test_pruned_lm_exports_as_a_save_pretrained_folder(folders, tmp_path) -> None:
    """kind="hf" writes the pruned GPT-2 (Conv1D layout) with its tokenizer; hf:FOLDER
    opens it with the same tokens, the same zeros and the same perplexity."""
    s = Session("pydoc-text", f"hf:{folders['gpt2']}", context=32, max_train_windows=32)
    snap = s.prune(criterion="wanda", pattern="2:4", calibration=8)
    out = s.export(tmp_path / "pruned", kind="hf")
    assert out["tokenizer"] and (tmp_path / "pruned" / "tokenizer.json").is_file()
    back = Session("pydoc-text", f"hf:{tmp_path / 'pruned'}", context=32,
                   max_train_windows=32)
    assert torch.equal(back.objective.corpus.val, s.objective.corpus.val)
    for name in s.slot.prunable:
        pruned = s.model.get_parameter(name)
        assert int((pruned == 0).sum()) * 2 >= pruned.numel()  # 2:4: half are zeros
        assert torch.equal(back.model.get_parameter(name), pruned)
    assert back.snapshot().extra["perplexity"] == pytest.approx(snap.extra["perplexity"])
    with pytest.raises(ValueError, match="is a file"):
        s.export(tmp_path / "pruned" / "config.json", kind="hf")


def test_run_exports_an_hf_folder_that_reopens(folders, tmp_path, capsys) -> None:
    """`explorer run ... --export DIR --export-kind hf` writes a save_pretrained folder with
    the tokenizer; hf:DIR reopens it with the run's zeros. Rerunning over the folder works;
    the kind is refused for a zoo model and without --export, before any training."""
    from explorer.cli.main import main

    out = tmp_path / "run-hf"
    args = ["run", "--dataset", "pydoc-text", "--model", f"hf:{folders['gpt2']}",
            "--epochs", "1", "--context", "32", "--train-windows", "64", "--prune-sparsity",
            "0.6", "--export", str(out), "--export-kind", "hf"]
    assert main(args) == 0, capsys.readouterr().err
    assert main(args) == 0, capsys.readouterr().err  # over the folder it wrote
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()
    back = Session("pydoc-text", f"hf:{out}", context=32, max_train_windows=16)
    weights = [back.model.get_parameter(n) for n in back.slot.prunable]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.6, abs=0.01)
    capsys.readouterr()
    assert main(["run", "--dataset", "pydoc-text", "--model", "gpt-tiny", "--export",
                 str(tmp_path / "x"), "--export-kind", "hf"]) == 2
    assert "--export-kind: 'hf'" in capsys.readouterr().err
    assert main(["run", "--export-kind", "zeros"]) == 2
    assert "needs --export" in capsys.readouterr().err
    assert main(["run", "--export", str(out)]) == 2  # a folder, and not hf
    assert "is a folder" in capsys.readouterr().err
