"""hdc.nn: torch modules, export to the packed torch-free model, tasks, training loop and CLI."""
import copy
import json
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch

import hdc
from hdc import attention
from hdc.cli.main import main as cli_main
from hdc.nn import HDTransformer, HammingKWTAAttention, PackedModel, VoterHead, ste_sign, tasks, training
from hdc.nn.modules import index_bits, kwta_select

torch.set_num_threads(1)


def test_ste_sign_forward_and_backward():
    x = torch.tensor([-2.0, -0.1, 0.0, 0.3], requires_grad=True)
    y = ste_sign(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0]
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh(x.detach().numpy()) ** 2, rtol=1e-6)


def test_torch_selection_matches_packed_selection_with_ties():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (3, 40, 16)).astype(bool)      # 16-bit codes: many tied scores
    bits[:, 5] = bits[:, 2]
    codes = hdc.BinaryHV.from_bool(bits)
    s_ref, i_ref = attention.kwta_select(codes, codes, 6)
    pm = torch.from_numpy(np.where(bits, 1.0, -1.0)).float()
    scores = (16 + pm @ pm.transpose(-1, -2)) * 0.5
    idx, valid = kwta_select(scores, 6, causal=True)
    np.testing.assert_array_equal(idx.numpy(), i_ref)
    np.testing.assert_array_equal(valid.numpy(), i_ref >= 0)


def test_kwta_attention_gradients_reach_code_projections():
    torch.manual_seed(0)
    att = HammingKWTAAttention(32, n_heads=2, code_bits=32, topk=4)
    y, win = att(torch.randn(2, 12, 32), return_winners=True)
    assert win.shape == (2, 2, 12, 4) and (win[:, :, 0, 1:] == -1).all()
    y.square().sum().backward()
    for p in (att.q_proj.weight, att.k_proj.weight, att.v_proj.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_dense_switch_keeps_everything_else_identical():
    kw = HDTransformer(20, d_model=32, n_layers=2, n_heads=2, code_bits=32, topk=4, attention="kwta")
    de = HDTransformer(20, d_model=32, n_layers=2, n_heads=2, code_bits=32, topk=4, attention="dense")
    assert kw.n_parameters() == de.n_parameters()
    assert kw.state_dict().keys() == de.state_dict().keys()
    assert kw.key_cache_bytes_per_token() * 32 == de.key_cache_bytes_per_token()


def test_voter_head():
    head = VoterHead(8, n_bits=3, n_voters=10)
    assert head.temperature == pytest.approx(0.5)
    np.testing.assert_allclose(head.vote_weights().sum(-1).detach().numpy(), 1, rtol=1e-6)
    assert head.active_voters() == 10.0
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    target = index_bits((x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long(), 3)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = VoterHead.loss(head(x), target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    with pytest.raises(ValueError, match="n_voters"):
        VoterHead(8, 3, n_voters=0)


def _trained(attention_kind, head="linear", steps=25, learn_temperature=False):
    task = tasks.MQAR(vocab_size=16, seq_len=32, n_pairs=4, seed=1, n_eval=16)
    model = training.build_model(task, attention_kind, d_model=32, n_layers=2, n_heads=2, code_bits=64, topk=4,
                                 head=head, learn_temperature=learn_temperature, seed=3)
    training.train(model, task, steps=steps, batch_size=16, lr=1e-2, progress=False)
    return task, model


@pytest.mark.parametrize("attention_kind,head,learned", [
    ("kwta", "linear", False), ("kwta", "voter", False), ("dense", "linear", False), ("kwta", "linear", True)])
def test_export_matches_torch_on_trained_weights(attention_kind, head, learned, tmp_path):
    task, model = _trained(attention_kind, head, learn_temperature=learned)
    if learned:   # training moved the per-head temperatures away from their common start
        t = model.blocks[0].attn.log_temperature.detach().exp()
        assert t.shape == (2,) and not torch.allclose(t, torch.full_like(t, 4.0))
    x = task.eval_batches()[0][0]
    with torch.no_grad():
        ref, win = model(torch.from_numpy(x), return_winners=True)
        ref64, win64 = copy.deepcopy(model).double()(torch.from_numpy(x), return_winners=True)
    packed = model.export()
    out, pwin = packed(x, return_winners=True)
    assert out.dtype == np.float32
    assert np.abs(out - ref64.numpy()).max() < 1e-4            # the float64 evaluation: exact
    assert np.abs(out - ref.numpy()).max() < 1e-4              # float32 torch (no code bit near 0 here)
    for a, a32, b in zip(win64, win, pwin):
        if attention_kind == "dense":
            assert a is None and a32 is None and b is None
        else:
            np.testing.assert_array_equal(a.numpy(), b)
            np.testing.assert_array_equal(a32.numpy(), b)
    # the documented file format: npz read without pickle, same outputs after a round trip
    path = tmp_path / "model.npz"
    packed.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(bytes(data["__config__"]).decode())["attention"] == attention_kind
    again = PackedModel.load(path)
    np.testing.assert_array_equal(again(x), out)


def test_learned_temperature_is_kwta_only_and_old_configs_load():
    de = HDTransformer(20, d_model=32, n_heads=2, code_bits=32, topk=4, attention="dense", learn_temperature=True)
    assert not any("log_temperature" in k for k in de.state_dict())     # dense scales q.k itself
    kw = HDTransformer(20, d_model=32, n_heads=2, code_bits=32, topk=4, learn_temperature=True)
    assert kw.state_dict()["blocks.0.attn.log_temperature"].shape == (2,)
    packed = HDTransformer(20, d_model=32, n_heads=2, code_bits=32, topk=4).export()
    config = {k: v for k, v in packed.config.items() if k != "learn_temperature"}   # a file from before
    assert PackedModel(config, packed.arrays).config["learn_temperature"] is False


@pytest.mark.parametrize("shift", [False, True, 1, 3, 5])
def test_token_shift_width_trains_exports_and_reads_old_configs(shift, tmp_path):
    from hdc.nn.packed import token_shift_width
    width = token_shift_width(shift)
    model = HDTransformer(12, d_model=16, n_layers=1, n_heads=2, code_bits=64, topk=3, max_len=8,
                          token_shift=shift)
    assert model.config["token_shift"] == width
    names = sorted(k for k in model.state_dict() if k.startswith("prev"))
    assert names == sorted(["prev.weight"][:width - 1] + [f"prev{s}.weight" for s in range(2, width)])
    x = torch.randint(0, 12, (3, 8))
    with torch.no_grad():
        ref, win = model.double()(x, return_winners=True)
        short = model(x[:, :2])                             # shorter than the shift: no out-of-range slice
    packed = model.float().export()
    out, pwin = packed(x.numpy(), return_winners=True)
    assert np.abs(out - ref.numpy()).max() < 1e-4
    np.testing.assert_array_equal(pwin[0], win[0].numpy())
    np.testing.assert_allclose(packed(x[:, :2].numpy()), short.numpy(), atol=1e-4)
    path = tmp_path / "m.npz"
    packed.save(path)
    np.testing.assert_array_equal(PackedModel.load(path)(x.numpy()), out)
    if isinstance(shift, bool):                             # files written when it was a bool
        old = PackedModel({**packed.config, "token_shift": shift}, packed.arrays)
        np.testing.assert_array_equal(old(x.numpy()), out)


@pytest.mark.parametrize("bad", [0, -1, 1025, 2.0, "2", None])
def test_token_shift_bad_values_name_the_argument(bad):
    with pytest.raises(ValueError, match="token_shift"):
        HDTransformer(12, d_model=16, n_layers=1, n_heads=2, code_bits=64, topk=3, token_shift=bad)
    packed = HDTransformer(12, d_model=16, n_layers=1, n_heads=2, code_bits=64, topk=3).export()
    with pytest.raises(ValueError, match="token_shift"):
        PackedModel({**packed.config, "token_shift": bad}, packed.arrays)


def test_packed_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a hdc.packed-transformer"):
        PackedModel.load(path)


def test_checkpoint_loads_weights_only(tmp_path):
    _, model = _trained("kwta", steps=2)
    path = tmp_path / "m.pt"
    model.save(path, step=2)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 2 and ckpt["config"]["attention"] == "kwta"
    again = HDTransformer.load(path)
    x = torch.randint(0, 16, (2, 32))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), again.eval()(x))


def test_packed_robustness_flips():
    task, model = _trained("kwta", "voter", steps=5)
    packed = model.export()
    x = task.eval_batches()[0][0][:4]
    clean = packed(x)
    assert np.array_equal(packed(x, key_flip=0.0, voter_flip=0.0), clean)
    assert not np.array_equal(packed(x, voter_flip=0.5, seed=1), clean)
    flipped, win = packed(x, key_flip=0.3, seed=1, return_winners=True)
    assert not np.array_equal(win[0], packed(x, return_winners=True)[1][0])
    with pytest.raises(ValueError, match="key_flip"):
        packed(x, key_flip=2.0)
    assert 1 <= packed.active_voters() <= 8


def test_model_input_checks():
    model = HDTransformer(10, d_model=16, n_layers=1, n_heads=2, code_bits=16, topk=2, max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="attention"):
        HDTransformer(10, attention="sparse")
    with pytest.raises(ValueError, match="divisible"):
        HammingKWTAAttention(10, n_heads=3)
    with pytest.raises(ValueError, match="tokens must lie"):
        model.export()(np.array([[0, 10]]))


def test_mqar_structure_and_reproducibility():
    task = tasks.MQAR(vocab_size=32, seq_len=40, n_pairs=6, seed=0)
    x, y, m = task.batch(5, np.random.default_rng(1))
    x2, y2, m2 = task.batch(5, np.random.default_rng(1))
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    for row, target, mask in zip(x, y, m):
        pairs = dict(zip(row[0:12:2], row[1:12:2]))
        assert len(pairs) == 6 and all(1 <= key < 16 for key in pairs)
        assert mask.sum() == 28 and not mask[:12].any()
        assert all(target[i] == pairs[row[i]] for i in np.flatnonzero(mask))
    assert len(task.eval_batches()) == 4
    with pytest.raises(ValueError, match="n_pairs"):
        tasks.MQAR(vocab_size=16, seq_len=64, n_pairs=8)


def test_charlm_on_a_text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40 + "naïve café", encoding="utf-8")
    task = tasks.CharLM(path, seq_len=16, holdout=0.2)
    assert "ï" in task.chars and task.vocab_size == len(set(path.read_text(encoding="utf-8")))
    x, y, m = task.batch(3, 0)
    assert np.array_equal(x[:, 1:], y[:, :-1]) and m.all()
    assert task.decode(task.encode("fox")) == "fox"
    model = training.build_model(task, "kwta", d_model=16, n_layers=1, n_heads=2, code_bits=16, topk=4)
    result = training.evaluate(model, task)
    assert 0 < result["bpc"] < 10
    with pytest.raises(FileNotFoundError):
        tasks.CharLM(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="too short"):
        (tmp_path / "s.txt").write_text("abc")
        tasks.CharLM(tmp_path / "s.txt")


def test_default_corpus_is_pydoc_topics():
    task = tasks.CharLM(seq_len=64)
    assert task.source == "pydoc_data.topics" and task.vocab_size > 50
    assert len(task.test_ids) > 10_000


def test_measure_reports_everything():
    task, model = _trained("kwta", "voter", steps=3)
    m = training.measure(model, task, {"train_seconds": 1.0})
    for key in ("accuracy", "parameters", "train_seconds", "attention_density", "key_cache_bytes_per_token",
                "active_voters_per_bit", "export_max_abs_diff", "robustness", "torch_inference_ms_per_seq"):
        assert key in m
    assert m["export_winners_identical"] is True and m["export_max_abs_diff"] < 1e-4
    assert set(m["robustness"]) >= {"clean", "key_bits_0.05", "voters_0.05"}
    assert 0 < m["attention_density"] < 1
    # dense codes always fill min(topk, visible) winners: the measured density is the formula's
    assert m["attention_density"] == pytest.approx(training.attention_density(model, task.seq_len))


def test_cli_train_and_compare(tmp_path, capsys):
    common = ["--steps", "3", "--d-model", "16", "--heads", "2", "--layers", "1", "--seq-len", "24",
              "--batch-size", "4", "--no-progress", "--threads", "1"]
    small = common + ["--pairs", "4", "--vocab", "16"]
    ck, js, ex = tmp_path / "m.pt", tmp_path / "m.json", tmp_path / "m.npz"
    assert cli_main(["train", "mqar", "--attention", "kwta", "--topk", "3", "--checkpoint", str(ck),
                     "--json", str(js), "--export", str(ex), *small]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert torch.load(ck, weights_only=True)["config"]["topk"] == 3
    assert json.loads(js.read_text())["config"]["attention"] == "kwta"
    assert PackedModel.load(ex).config["topk"] == 3
    cj = tmp_path / "c.json"
    assert cli_main(["compare", "mqar", "--json", str(cj), *small]) == 0
    result = json.loads(cj.read_text())
    assert set(result) == {"kwta", "dense", "config"}
    assert 0 <= result["kwta"]["accuracy"] <= 1 and 0 <= result["dense"]["accuracy"] <= 1
    assert result["config"]["steps"] == 3
    text = tmp_path / "t.txt"
    text.write_text("hello world, this is a small text. " * 30)
    cj2 = tmp_path / "c2.json"
    assert cli_main(["compare", "charlm", "--text", str(text), "--json", str(cj2),
                     *common]) == 0
    result = json.loads(cj2.read_text())
    assert result["kwta"]["bpc"] > 0 and result["dense"]["bpc"] > 0
    assert cli_main(["train", "mqar", "--steps", "0"]) == 2
    assert "--steps must be a positive" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
@pytest.mark.parametrize("keep", [False, True])
def test_keep_freed_memory_stops_large_blocks_faulting_in_again(keep):
    # training's pattern, tensors of 64 and 16 MB allocated and freed round after round: glibc maps
    # them afresh each round (16,384 + 4,096 page faults of 4 kB; torch, unlike NumPy, asks for no
    # huge pages) unless hdc train / compare kept the heap, where the rounds after the first two
    # reuse it; in a subprocess, so this process's allocator is untouched
    code = ("import resource, torch\n"
            "from hdc.cli.train import keep_freed_memory\n"
            f"print(keep_freed_memory() if {keep} else False)\n"
            "for _ in range(4):\n"
            "    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "    a, b = torch.ones(1 << 24), torch.ones(1 << 22)\n"
            "    del a, b\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == str(keep)
    assert (int(out[1]) < 1_000) if keep else (int(out[1]) > 10_000), out
