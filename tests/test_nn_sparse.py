"""hdc.nn sparse block Q/K codes and k-WTA feed-forward: semantics, gradients, export, CLI variants."""
import copy
import json

import numpy as np
import pytest
import torch

import hdc
from hdc import attention
from hdc.cli.main import main as cli_main
from hdc.nn import HDTransformer, HammingKWTAAttention
from hdc.nn.modules import kwta_select, kwta_ste, ste_onehot

torch.set_num_threads(1)


def _minimise(loss, opt, steps):
    """``steps`` optimiser steps on ``loss()``; returns its value before and after."""
    first = loss().item()
    for _ in range(steps):
        opt.zero_grad()
        loss().backward()
        opt.step()
    return first, loss().item()


def test_ste_onehot_forward_is_onehot_backward_is_softmax():
    x = torch.tensor([[0.3, 2.0, -1.0, 2.0]], requires_grad=True)
    y = ste_onehot(x)
    assert y.tolist() == [[0.0, 1.0, 0.0, 0.0]]                 # argmax ties: first, as np.argmax
    g = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    (y * g).sum().backward()
    soft = x.detach().softmax(-1)
    want = soft * (g - (soft * g).sum(-1, keepdim=True))
    torch.testing.assert_close(x.grad, want)


def test_kwta_ste_keeps_k_largest_and_passes_gradient_straight():
    h = torch.tensor([[0.5, -1.0, 2.0, 1.0, 0.1]], requires_grad=True)
    y = kwta_ste(h, 2)
    assert y.tolist() == [[0.0, 0.0, 2.0, 1.0, 0.0]]
    y.sum().backward()
    assert h.grad.tolist() == [[1.0] * 5]


def test_kwta_mask_passes_gradient_to_the_kept_units_only():
    from hdc.nn.modules import kwta_mask
    h = torch.tensor([[0.5, -1.0, 2.0, 1.0, 0.1]], requires_grad=True)
    y = kwta_mask(h, 2)
    assert y.tolist() == [[0.0, 0.0, 2.0, 1.0, 0.0]]
    (y * torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])).sum().backward()
    assert h.grad.tolist() == [[0.0, 0.0, 3.0, 4.0, 0.0]]


@pytest.mark.parametrize("straight", [False, True])
def test_ffn_gradient_option(straight):
    torch.manual_seed(0)
    model = HDTransformer(12, d_model=16, n_layers=1, n_heads=2, code_bits=64, topk=3, ffn_topk=4,
                          ffn_straight_through=straight)
    assert model.config["ffn_straight_through"] is straight
    seen = []
    model.blocks[0].ff1.register_forward_hook(lambda mod, inp, out: seen.append(out.detach()))
    model(torch.randint(0, 12, (2, 10))).sum().backward()
    # ff1's rows of the units that won in no token get a gradient only when straight through
    hidden = torch.nn.functional.gelu(seen[0], approximate="tanh")
    won = torch.zeros(hidden.shape[-1], dtype=torch.bool)
    won[hidden.topk(4, dim=-1).indices.flatten()] = True
    assert not won.all()
    silent = model.blocks[0].ff1.weight.grad[~won].abs().sum()
    assert (silent > 0) if straight else (silent == 0)
    again = HDTransformer(**model.config)                     # the option round-trips through config
    assert again.config["ffn_straight_through"] is straight
    with pytest.raises(ValueError, match="ffn_straight_through"):
        HDTransformer(12, d_model=16, n_layers=1, n_heads=2, code_bits=64, topk=3, ffn_topk=4,
                      ffn_straight_through=1)


def test_torch_sparse_selection_matches_packed_kernel():
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 3, (2, 30, 4))                     # 4 blocks of 3: many ties and zeros
    codes = hdc.SparseHV(idx, 3)
    s_ref, i_ref = attention.kwta_select(codes, codes, 5)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(idx), 3).flatten(-2).float()
    scores = onehot @ onehot.transpose(-1, -2)
    got, valid = kwta_select(scores, 5, causal=True, min_score=1)
    np.testing.assert_array_equal(got.numpy(), i_ref)
    np.testing.assert_array_equal(valid.numpy(), i_ref >= 0)


def _reference_sparse_attention(att, x):
    """The sparse-code attention written with ste_onehot codes and their L x L product (the
    definition :class:`_WinnerOverlap` and :func:`sparse_overlap` compute without either)."""
    b, n, _ = x.shape
    ql = att._split(att.q_proj(x), att.code_bits).unflatten(-1, (att.blocks, att.block_size))
    kl = att._split(att.k_proj(x), att.code_bits).unflatten(-1, (att.blocks, att.block_size))
    v = att._split(att.v_proj(x), att.d_head)
    scores = ste_onehot(ql).flatten(-2) @ ste_onehot(kl).flatten(-2).transpose(-1, -2)
    idx, valid = kwta_select(scores, att.topk, True, min_score=1)
    picked = scores.gather(-1, idx.clamp(min=0)) / att.log_temperature.exp().view(1, -1, 1, 1)
    w = picked.masked_fill(~valid, torch.finfo(picked.dtype).min).softmax(-1)
    weights = torch.zeros_like(scores).scatter_add(-1, idx.clamp(min=0), w * valid)
    return att.out_proj((weights @ v).transpose(1, 2).reshape(b, n, -1))


@pytest.mark.parametrize("blocks,size", [(4, 3), (8, 64), (3, 1)])
def test_fused_sparse_attention_matches_the_onehot_definition(blocks, size):
    torch.manual_seed(blocks * size)
    att = HammingKWTAAttention(24, n_heads=2, topk=5, code="sparse", blocks=blocks, block_size=size,
                               learn_temperature=True)
    x = torch.randn(3, 40, 24)
    grads = []
    for forward in (att, lambda t: _reference_sparse_attention(att, t)):
        att.zero_grad()
        y = forward(x)
        (y * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
        grads.append([p.grad.clone() for p in att.parameters()])
        if forward is att:
            y_fused = y.detach()
    torch.testing.assert_close(y_fused, _reference_sparse_attention(att, x).detach())
    for fused, ref in zip(*grads):
        torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)


def test_attention_density_counts_only_real_winners():
    from hdc.nn import training
    model = HDTransformer(vocab_size=8, d_model=8, n_layers=1, n_heads=1, topk=2, code="sparse",
                          block_size=4, blocks=2)
    winners = [torch.tensor([[[[0, -1], [-1, -1], [2, 0]]]])]       # 1 of 1, 0 of 2, 2 of 3 visible
    assert training.attention_density(model, 3, winners) == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert training.attention_density(model, 3) == pytest.approx((1 + 1 + 2 / 3) / 3)


def test_sparse_overlap_counts_equal_blocks():
    from hdc.nn.modules import sparse_overlap
    rng = np.random.default_rng(3)
    iq, ik = (torch.from_numpy(rng.integers(0, 4, (2, n, 6))) for n in (7, 9))
    onehot = lambda t: torch.nn.functional.one_hot(t, 4).flatten(-2).float()
    want = onehot(iq) @ onehot(ik).transpose(-1, -2)
    got = sparse_overlap(iq, ik)
    assert got.dtype == torch.int16
    torch.testing.assert_close(got.float(), want)


def test_sparse_attention_trains_and_handles_queries_without_winners():
    torch.manual_seed(0)
    att = HammingKWTAAttention(32, n_heads=2, code_bits=64, topk=4, code="sparse", block_size=16)
    assert (att.blocks, att.block_size, att.temperature) == (4, 16, 1.0)
    y, win = att(torch.randn(3, 20, 32), return_winners=True)
    assert torch.isfinite(y).all() and win.shape == (3, 2, 20, 4)
    y.square().sum().backward()
    for p in (att.q_proj.weight, att.k_proj.weight):
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("kw", [
    dict(code="sparse", block_size=8, code_bits=64, topk=4),
    dict(code="sparse", blocks=4, block_size=4, topk=6, ffn_topk=8, learn_temperature=True),
    dict(code_bits=64, topk=4, ffn_topk=5),
    dict(code="sparse", blocks=4, block_size=8, topk=4, balance=0.05, overlap=1.0),
])
def test_export_picks_identical_winners(kw):
    torch.manual_seed(0)
    model = HDTransformer(30, d_model=32, n_layers=2, n_heads=2, max_len=24, **kw)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    x = torch.randint(0, 30, (3, 24))
    for _ in range(3):                                        # a few steps: codes move off init
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten())
        aux = model.aux_loss()
        assert (aux is None) == ("overlap" not in kw)
        opt.zero_grad()
        (loss if aux is None else loss + aux).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        ref, win = copy.deepcopy(model).double()(x, return_winners=True)
    packed = model.export()
    stats = {}
    out, pwin = packed(x.numpy(), return_winners=True, stats=stats)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-4)
    for a, b in zip(win, pwin):
        np.testing.assert_array_equal(a.numpy(), b)
    ffn = kw.get("ffn_topk")
    assert len(stats["ffn_density"]) == 2
    if ffn:
        assert all(d <= ffn / 128 for d in stats["ffn_density"])
    else:
        assert all(d > 0.9 for d in stats["ffn_density"])
    if kw.get("code") == "sparse":
        assert 0 < stats["pairs_touched_fraction"] < 1
        assert model.key_cache_bytes_per_token() == 2 * 2 * model.config["blocks"]
    else:
        assert stats["pairs_touched_fraction"] == 1.0


def test_bad_sparse_configuration():
    with pytest.raises(ValueError, match="block_size must divide code_bits"):
        HammingKWTAAttention(32, code_bits=60, code="sparse", block_size=16)
    with pytest.raises(ValueError, match="needs block_size"):
        HammingKWTAAttention(32, code="sparse")
    with pytest.raises(ValueError, match="needs attention='kwta'"):
        HammingKWTAAttention(32, code="sparse", block_size=16, attention="dense")
    with pytest.raises(ValueError, match="code must be one of"):
        HammingKWTAAttention(32, code="sbc")
    with pytest.raises(ValueError, match="code_bits must equal blocks"):
        HammingKWTAAttention(32, code_bits=64, code="sparse", blocks=3, block_size=16)
    with pytest.raises(ValueError, match="blocks and block_size are for code='sparse'"):
        HammingKWTAAttention(32, block_size=16)
    with pytest.raises(ValueError, match="ffn_topk must be <= d_ff"):
        HDTransformer(10, d_model=16, d_ff=32, ffn_topk=33)
    with pytest.raises(ValueError, match="ffn_topk must be a positive int"):
        HDTransformer(10, d_model=16, ffn_topk=0)


def test_cli_compare_variants(tmp_path, capsys):
    small = ["--steps", "2", "--d-model", "16", "--heads", "2", "--layers", "1", "--seq-len", "24",
             "--batch-size", "4", "--no-progress", "--threads", "1", "--pairs", "4", "--vocab", "16",
             "--blocks", "4", "--block-size", "16"]
    cj = tmp_path / "c.json"
    assert cli_main(["compare", "mqar", "--variants", "dense,kwta,sparse,sparse_ffn", "--json", str(cj),
                     *small]) == 0
    result = json.loads(cj.read_text())
    assert set(result) == {"dense", "kwta", "sparse", "sparse_ffn", "config"}
    for name in ("dense", "kwta", "sparse", "sparse_ffn"):
        m = result[name]
        for key in ("accuracy", "pairs_touched_fraction", "ffn_density", "key_cache_bytes_per_token",
                    "train_seconds", "packed_inference_ms_per_seq", "torch_inference_ms_per_seq"):
            assert key in m, (name, key)
    assert result["sparse"]["pairs_touched_fraction"] < 1 == result["kwta"]["pairs_touched_fraction"]
    assert result["sparse_ffn"]["ffn_density"][0] <= 0.1 < result["sparse"]["ffn_density"][0]
    assert result["sparse"]["model"]["code"] == "sparse" and result["sparse_ffn"]["model"]["ffn_topk"] == 6
    assert result["sparse"]["model"]["balance"] == 0.05 and result["dense"]["model"]["balance"] == 0.0
    for name in ("sparse", "sparse_ffn"):
        assert 0 <= result[name]["pairs_touched_fraction_4096"] <= 1
    assert result["kwta"]["pairs_touched_fraction_4096"] is None
    assert cli_main(["compare", "mqar", "--variants", "kwta,bogus", *small]) == 2
    assert "--variants must be" in capsys.readouterr().err
    assert cli_main(["compare", "mqar", "--variants", "sparse", "--balance", "-1", *small]) == 2
    assert "--balance must be" in capsys.readouterr().err
    assert cli_main(["compare", "mqar", "--variants", "sparse", "--overlap", "nan", *small]) == 2
    assert "--overlap must be" in capsys.readouterr().err
    assert cli_main(["compare", "mqar", "--variants", "sparse", "--overlap-start", "2", *small]) == 2
    assert "--overlap-start must be" in capsys.readouterr().err
    assert result["sparse"]["model"]["overlap"] == 0.0
    oj = tmp_path / "o.json"
    assert cli_main(["compare", "mqar", "--variants", "sparse", "--overlap", "0.5", "--json", str(oj), *small]) == 0
    assert json.loads(oj.read_text())["sparse"]["model"]["overlap"] == 0.5


def test_balance_loss_is_one_for_uniform_codes_and_block_size_when_collapsed():
    from hdc.nn.modules import balance_loss
    torch.manual_seed(0)
    uniform = torch.randn(4, 2, 4096, 3, 16) * 0.01          # near-flat logits, argmax spread evenly
    assert abs(float(balance_loss(uniform, uniform)) - 1.0) < 0.05
    collapsed = uniform.clone()
    collapsed[..., 5] += 30.0                                  # every code picks index 5
    assert abs(float(balance_loss(collapsed, collapsed)) - 16.0) < 1e-3
    # each side is balanced on its own: keys collapsed on another index than the queries do
    # not lower the loss (a query-key collision loss would reward codes that never match)
    apart = uniform.clone()
    apart[..., 6] += 30.0
    assert abs(float(balance_loss(collapsed, apart)) - 16.0) < 1e-3
    assert abs(float(balance_loss(uniform, collapsed)) - 8.5) < 0.05


def test_balance_loss_trains_codes_off_a_shared_index():
    from hdc.nn.modules import balance_loss
    torch.manual_seed(1)
    x = torch.randn(256, 8)
    proj = torch.nn.Linear(8, 2 * 16)
    with torch.no_grad():
        proj.bias[torch.arange(2) * 16 + 3] += 5.0             # both blocks start collapsed on 3
    opt = torch.optim.Adam(proj.parameters(), 0.05)

    def loss():
        logits = proj(x).view(1, 1, 256, 2, 16)
        return balance_loss(logits, logits)
    first, last = _minimise(loss, opt, 60)
    assert first > 12 and last < 0.5 * first


def test_model_balance_option():
    with pytest.raises(ValueError, match="balance is for code='sparse'"):
        HDTransformer(10, d_model=16, n_heads=2, balance=0.1)
    with pytest.raises(ValueError, match="balance must be a finite float >= 0"):
        HDTransformer(10, d_model=16, n_heads=2, code="sparse", block_size=8, balance=-1.0)
    torch.manual_seed(0)
    x = torch.randint(0, 10, (2, 12))
    plain = HDTransformer(10, d_model=16, n_heads=2, code="sparse", block_size=8, max_len=12)
    plain(x)
    assert plain.aux_loss() is None
    model = HDTransformer(10, d_model=16, n_heads=2, code="sparse", block_size=8, max_len=12, balance=0.5)
    model(x)
    layers = torch.stack([b.attn.balance_loss for b in model.blocks]).mean()
    aux = model.aux_loss()
    torch.testing.assert_close(aux, 0.5 * layers)
    assert model.aux_loss() is None                           # consumed: no graph left behind
    copy.deepcopy(model)
    aux.backward()
    assert model.blocks[0].attn.q_proj.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        model(x)
    assert model.aux_loss() is None                           # evaluation adds no loss
    assert model.config["balance"] == 0.5


def _brute_overlap(q_logits, k_logits, winners, valid):
    """The overlap penalty from the full L x L matrix of expected shared blocks."""
    pq, pk = q_logits.softmax(-1).flatten(-2), k_logits.softmax(-1).flatten(-2)
    shared = pq @ pk.transpose(-1, -2)
    n = shared.shape[-1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    picked = torch.zeros_like(shared).scatter_add(-1, winners.clamp(min=0), valid.to(shared.dtype)) > 0
    return (shared * (causal & ~picked)).sum((-1, -2)).mean() / (n * (n + 1) / 2)


def test_overlap_loss_matches_the_pairwise_sum_and_its_bounds():
    from hdc.nn.modules import overlap_loss
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 17, 4, 8, dtype=torch.float64), torch.randn(2, 3, 17, 4, 8, dtype=torch.float64)
    scores = torch.randint(0, 3, (2, 3, 17, 17)).double()
    idx, valid = kwta_select(scores, 5, causal=True, min_score=1)     # some queries with empty slots
    assert (~valid).any() and valid.any()
    torch.testing.assert_close(overlap_loss(q, k, idx, valid), _brute_overlap(q, k, idx, valid))
    none = torch.full_like(idx, -1)
    torch.testing.assert_close(overlap_loss(q, k), _brute_overlap(q, k, none, none >= 0))
    flat = torch.randn(4, 2, 256, 8, 64) * 1e-3                           # near-uniform: blocks / block_size
    assert abs(float(overlap_loss(flat, flat)) - 8 / 64) < 1e-3
    apart_q, apart_k = torch.zeros(1, 1, 9, 2, 8), torch.zeros(1, 1, 9, 2, 8)
    apart_q[..., 0], apart_k[..., 1] = 40.0, 40.0                           # never the same index
    assert float(overlap_loss(apart_q, apart_k)) < 1e-12


def test_overlap_loss_trains_unselected_pairs_apart():
    from hdc.nn.modules import overlap_loss
    torch.manual_seed(2)
    n, size = 32, 16
    x = torch.randn(n, 8)
    q_proj, k_proj = torch.nn.Linear(8, 2 * size), torch.nn.Linear(8, 2 * size)
    with torch.no_grad():                                     # every code starts on index 3
        for proj in (q_proj, k_proj):
            proj.bias[torch.arange(2) * size + 3] += 5.0
    winners = torch.arange(n).view(1, 1, n, 1)               # each query selects its own key
    opt = torch.optim.Adam([*q_proj.parameters(), *k_proj.parameters()], 0.05)

    def loss():
        return overlap_loss(q_proj(x).view(1, 1, n, 2, size), k_proj(x).view(1, 1, n, 2, size), winners)
    first, last = _minimise(loss, opt, 80)
    assert first > 1.0 and last < 0.1 * first
    with torch.no_grad():
        qc, kc = q_proj(x).view(n, 2, size).argmax(-1), k_proj(x).view(n, 2, size).argmax(-1)
        shared = (qc[:, None] == kc[None]).any(-1).tril(-1)   # causal pairs other than (i, i)
    assert shared.float().sum() / (n * (n - 1) / 2) < 0.25


def test_model_overlap_option():
    with pytest.raises(ValueError, match="overlap is for code='sparse'"):
        HDTransformer(10, d_model=16, n_heads=2, overlap=0.1)
    with pytest.raises(ValueError, match="overlap must be a finite float >= 0"):
        HDTransformer(10, d_model=16, n_heads=2, code="sparse", block_size=8, overlap=float("inf"))
    torch.manual_seed(0)
    x = torch.randint(0, 10, (2, 12))
    model = HDTransformer(10, d_model=16, n_heads=2, code="sparse", block_size=8, max_len=12, balance=0.5,
                          overlap=2.0)
    model(x)
    bal = torch.stack([b.attn.balance_loss for b in model.blocks]).mean()
    ovl = torch.stack([b.attn.overlap_loss for b in model.blocks]).mean()
    assert ovl > 0
    aux = model.aux_loss()
    torch.testing.assert_close(aux, 0.5 * bal + 2.0 * ovl)
    assert model.aux_loss() is None
    only = HDTransformer(10, d_model=16, n_heads=2, code="sparse", block_size=8, max_len=12, overlap=2.0)
    only(x)
    assert only.blocks[0].attn.balance_loss is None
    only.aux_loss().backward()
    assert only.blocks[0].attn.k_proj.weight.grad.abs().sum() > 0
    only.eval()
    with torch.no_grad():
        only(x)
    assert only.aux_loss() is None
    assert only.config["overlap"] == 2.0 and HDTransformer(10, d_model=16).config["overlap"] == 0.0


def test_long_context_touched_matches_the_packed_model_per_window():
    from hdc.nn import tasks, training
    task = tasks.MQAR(vocab_size=16, seq_len=24, n_pairs=4, n_eval=40)
    model = training.build_model(task, "kwta", d_model=16, n_layers=2, n_heads=2, topk=4, code="sparse",
                                 code_bits=None, blocks=4, block_size=4, seed=0)
    training.train(model, task, steps=3, batch_size=8, progress=False)
    windows = np.concatenate([x for x, _, _ in task.eval_batches()])
    stats = {}
    model.export()(windows, stats=stats)
    # one window per sequence: the packed model's own count over the same windows
    assert training.long_context_touched(model, task, length=24) == pytest.approx(
        stats["pairs_touched_fraction"], rel=1e-12)
    long = training.long_context_touched(model, task, length=24 * 8)   # 5 sequences of 192
    assert 0 < long < 1
    assert training.long_context_touched(model, task, length=24 * 41) is None   # only 40 windows
    dense = training.build_model(task, "kwta", d_model=16, n_layers=1, n_heads=2, topk=4, seed=0)
    assert training.long_context_touched(dense, task) is None


def test_train_ramps_the_overlap_penalty_in_from_overlap_start():
    from hdc.nn import tasks, training
    task = tasks.MQAR(vocab_size=16, seq_len=24, n_pairs=4, n_eval=8)
    model = training.build_model(task, "kwta", d_model=16, n_layers=1, n_heads=2, topk=4, code="sparse",
                                 code_bits=None, blocks=4, block_size=8, overlap=1.0, seed=0)
    scales, aux = [], []
    model.register_forward_pre_hook(lambda mod, inp: scales.append(mod.overlap_scale))
    aux_loss = model.aux_loss
    model.aux_loss = lambda: aux.append(aux_loss()) or aux[-1]
    training.train(model, task, steps=10, batch_size=4, progress=False, overlap_start=0.5, overlap_ramp=0.2)
    assert scales == pytest.approx([0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1])
    assert all(float(a.detach()) == 0 for a in aux[:6]) and all(float(a.detach()) > 0 for a in aux[6:])
    assert model.overlap_scale == 1.0
    with pytest.raises(ValueError, match="overlap_start must be a fraction"):
        training.train(model, task, steps=1, progress=False, overlap_start=1.5)
