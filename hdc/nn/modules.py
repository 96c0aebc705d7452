"""Torch modules of the HD-transformer: Hamming k-WTA attention, the transformer, the voter head.

The k-WTA attention scores a query against a key by ``score = bits - hamming(code_q, code_k)``
where the codes are the signs of learned projections (bit 1 where the projection is >= 0).
Each query keeps its ``topk`` highest-scoring visible keys (ties by smaller key index, the same
rule as :func:`hdc.attention.kwta_attention`) and mixes their values with a softmax of
``score / temperature`` over the winners only. Gradients reach the projections through a
straight-through estimator (forward: sign; backward: the derivative of tanh) and reach the
scores of the selected keys only.

``attention="dense"`` is the same model with plain softmax attention over all visible keys on
the float projections (``q . k / sqrt(code_bits)``): the baseline with one switch.

``code="sparse"`` makes the Q/K codes sparse block codes instead (``blocks`` blocks of
``block_size``, one active element per block, the codes of :class:`hdc.SparseHV`): per block the
projection's ``block_size`` logits pick their argmax, ``score = overlap`` (equal blocks), and a
key with overlap 0 never wins, as in the packed event-driven kernel. Gradients pass through a
straight-through one-hot (:func:`ste_onehot`: forward one-hot of the argmax, backward the
gradient of the softmax over the block), the noise-free straight-through Gumbel-softmax of Jang
et al. (2017): noise-free because the exported model must pick the same codes deterministically,
and the softmax (rather than identity) backward because it is the derivative of the relaxation
whose limit the forward pass is, which keeps the gradient bounded per block. The attention computes
that estimator fused (:func:`sparse_overlap` for the scores, ``_WinnerOverlap`` for the winners'
gradients): no one-hot codes and no float ``L x L`` product, the same values and gradients.

``balance`` (sparse codes, training only) adds a load-balancing loss on the codes' block
indices, as in mixture-of-experts routing (the Switch Transformer's ``N sum_i f_i P_i``, for
queries and keys separately; :func:`balance_loss`): it pushes the codes off over-used indices,
so fewer keys share a bucket and a query touches fewer of them in the event-driven kernel.
:meth:`HDTransformer.aux_loss` returns ``balance`` times its mean over layers; training adds it.
Balanced codes only reach the touched fraction of random codes of their shape
(``1 - (1 - 1/block_size)^blocks``). ``overlap`` (sparse codes, training only) is the weight of a
penalty on the expected number of blocks a query shares with the visible keys it does *not*
select (:func:`overlap_loss`): it asks for codes whose non-matching pairs share no block, which
is what it takes to get below that floor; the selected pairs are left to the task loss.

``ffn_topk`` (both codes) keeps only the ``ffn_topk`` largest hidden units of each token's
feed-forward layer (:func:`kwta_mask`: forward zeroes the rest, backward the exact gradient of
that; ``ffn_straight_through=True``: :func:`kwta_ste`, every unit gets its gradient as if it had
passed, which cost 0.069 bpc on the character LM where the exact gradient gained); the
exported model then reads only the active units' rows of the second weight matrix.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from .packed import key_cache_bytes_per_token, token_shift_weights, token_shift_width

__all__ = ["HammingKWTAAttention", "HDTransformer", "VoterHead", "ste_sign", "ste_onehot", "kwta_ste",
           "kwta_mask", "balance_loss", "overlap_loss", "sparse_overlap"]

ATTENTIONS = ("kwta", "dense")
CODES = ("dense", "sparse")
HEADS = ("linear", "voter")


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1.0 - torch.tanh(x) ** 2)


def ste_sign(x):
    """+1 where ``x >= 0`` else -1; backward passes ``grad * (1 - tanh(x)^2)``.

    >>> import torch
    >>> ste_sign(torch.tensor([-0.5, 0.0, 2.0])).tolist()
    [-1.0, 1.0, 1.0]
    """
    return _SignSTE.apply(x)


def _onehot(logits):
    """One-hot of the argmax over the last axis, in ``logits``' dtype and layout (no gradient).

    The same as ``F.one_hot(logits.argmax(-1), n).to(logits.dtype)``, without the int64
    intermediate (about 1.8x faster on one CPU thread for (32, 4, 128, 8, 64) codes, argmax
    included, under load)."""
    return torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)


def ste_onehot(logits):
    """One-hot of the argmax over the last axis; backward: the gradient of ``softmax(logits)``.

    >>> import torch
    >>> ste_onehot(torch.tensor([[0.1, 2.0, -1.0]])).tolist()
    [[0.0, 1.0, 0.0]]
    """
    soft = logits.softmax(-1)
    return _onehot(logits.detach()) + (soft - soft.detach())


class _WinnerOverlap(torch.autograd.Function):
    """Blocks each query shares with its winners, with the gradient of :func:`ste_onehot` codes.

    ``forward(pq, pk, iq, ik, winners, valid)``: the blocks' softmax ``pq``, ``pk``
    ``(B, H, L, blocks, size)``, their argmax ``iq``, ``ik`` ``(B, H, L, blocks)``, the winners
    ``(B, H, L, k)`` (clamped to >= 0) and their mask -> overlaps ``(B, H, L, k)`` (0 where not
    valid). The same values and gradients as gathering ``ste_onehot(q) @ ste_onehot(k).T`` at the
    winners, without the one-hot codes or the ``L x L`` product: the one-hot's gradient goes to
    the softmax, ``d pq[i, b, x] = sum_r g[i, r] [ik[w_r, b] = x]`` and
    ``d pk[j, b, x] = sum_{i, r: w_r = j} g[i, r] [iq[i, b] = x]``, two scatters of
    ``B H L k blocks`` terms.
    """

    @staticmethod
    def forward(ctx, pq, pk, iq, ik, winners, valid):
        b, h, n, k = winners.shape
        blocks = iq.shape[-1]
        ik_won = ik.gather(2, winners.flatten(2)[..., None].expand(-1, -1, -1, blocks)).view(b, h, n, k, blocks)
        ctx.save_for_backward(iq, ik_won, winners, valid)
        ctx.shapes = pq.shape, pk.shape
        return (iq[..., None, :] == ik_won).sum(-1).to(pq.dtype) * valid

    @staticmethod
    def backward(ctx, grad):
        iq, ik_won, winners, valid = ctx.saved_tensors
        (b, h, n, blocks, size), shape_k = ctx.shapes
        g = grad * valid                                                   # (B, H, L, k)
        gq = torch.zeros((b, h, n, blocks, size), dtype=g.dtype, device=g.device)
        gq.scatter_add_(-1, ik_won.transpose(-1, -2), g[..., None, :].expand(-1, -1, -1, blocks, -1))
        slot = (winners[..., None] * (blocks * size)
                + torch.arange(blocks, device=g.device) * size + iq[..., None, :])   # (B, H, L, k, blocks)
        gk = torch.zeros((b, h, shape_k[2] * blocks * size), dtype=g.dtype, device=g.device)
        gk.scatter_add_(-1, slot.flatten(2), g[..., None].expand(-1, -1, -1, -1, blocks).flatten(2))
        return gq, gk.view(shape_k), None, None, None, None


def sparse_overlap(iq, ik):
    """Overlap (equal blocks) of every query code with every key code: ``(..., Lq, Lk)`` int16/int32.

    ``iq`` ``(..., Lq, blocks)``, ``ik`` ``(..., Lk, blocks)``: the active index of each block.
    One comparison of the two index columns per block, summed in the smallest int that holds
    ``blocks``: no one-hot codes, no float product.

    >>> import torch
    >>> sparse_overlap(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, 0], [0, 0, 3]])).tolist()
    [[2, 1]]
    """
    blocks = iq.shape[-1]
    dtype = torch.int16 if blocks < 1 << 15 else torch.int32
    out = torch.zeros(iq.shape[:-1] + ik.shape[-2:-1], dtype=dtype, device=iq.device)
    for b in range(blocks):
        out += iq[..., :, None, b] == ik[..., None, :, b]
    return out


def kwta_ste(h, k):
    """Keep the ``k`` largest entries of the last axis, zero the rest; backward: identity.

    >>> import torch
    >>> kwta_ste(torch.tensor([[0.5, -1.0, 2.0, 1.0]]), 2).tolist()
    [[0.0, 0.0, 2.0, 1.0]]
    """
    mask = torch.zeros_like(h).scatter(-1, h.topk(k, dim=-1).indices, 1.0)
    return h * mask + (h - h.detach()) * (1 - mask)


def kwta_mask(h, k):
    """Keep the ``k`` largest entries of the last axis, zero the rest; backward: the exact gradient
    of that (the kept entries get theirs, the zeroed ones none), as in top-k activations.

    >>> import torch
    >>> h = torch.tensor([[0.5, -1.0, 2.0, 1.0]], requires_grad=True)
    >>> kwta_mask(h, 2).sum().backward(); h.grad.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """
    return h * torch.zeros_like(h).scatter(-1, h.detach().topk(k, dim=-1).indices, 1.0)


def balance_loss(q_logits, k_logits):
    """Load-balancing loss of sparse Q/K codes: 1 for uniform index use, more when collapsed.

    ``q_logits``, ``k_logits``: ``(B, H, L, blocks, block_size)``. Per head and block and for
    queries and keys separately, the Switch Transformer's ``block_size * sum_x f(x) P(x)``,
    averaged: ``f`` the fraction of codes (over batch and positions) whose argmax is ``x``,
    without gradient; ``P`` the mean softmax probability of ``x``, which carries the gradient.
    Each side is balanced on its own, so a query and the keys it must match may still share
    indices (a loss on query-key collisions ``f_q . P_k`` is minimised by codes that never
    share a block at all: it stopped MQAR from learning).

    >>> import torch
    >>> z = torch.zeros(1, 1, 4, 2, 8); z[..., 0] = 20.0   # every code picks index 0
    >>> round(float(balance_loss(z, z)), 3)                 # block_size times uniform use
    8.0
    """
    return _balance_loss(q_logits.softmax(-1), q_logits.detach().argmax(-1),
                         k_logits.softmax(-1), k_logits.detach().argmax(-1))


def _balance_loss(pq, iq, pk, ik):
    """:func:`balance_loss` from the blocks' softmax ``pq``, ``pk`` ``(B, H, L, blocks, size)``
    and argmax ``iq``, ``ik`` ``(B, H, L, blocks)`` (the attention computes both once)."""
    b, h, n, blocks, size = pq.shape

    def side(p, idx):
        slot = (torch.arange(h * blocks, device=idx.device).view(h, 1, blocks) * size + idx).flatten()
        hard = torch.zeros(h * blocks * size, dtype=p.dtype, device=p.device)
        hard.scatter_add_(0, slot, torch.ones_like(slot, dtype=p.dtype))
        used = hard.view(h, blocks, size) / (b * n)            # f: fraction of codes per index
        return size * (used * p.mean((0, 2))).sum(-1).mean()

    return (side(pq, iq) + side(pk, ik)) / 2


def overlap_loss(q_logits, k_logits, winners=None, valid=None):
    """Expected shared blocks per causal query-key pair, the selected pairs left out.

    ``q_logits``, ``k_logits``: ``(B, H, L, blocks, block_size)``; ``winners``: ``(B, H, L, k)``
    key indices each query selected (-1 or ``valid`` False: empty slot), or None (every pair
    counts). With ``p`` the softmax of each block, pair ``(i, j)`` shares
    ``sum_b <p_q[i, b], p_k[j, b]>`` blocks in expectation (an upper bound on the chance that
    it shares one, i.e. that the event-driven kernel touches it). Summed over the causal pairs
    ``j <= i`` through prefix sums of the key probabilities (``O(L blocks block_size)``, no
    ``L x L`` matrix), minus the selected pairs (``O(L k blocks block_size)``), divided by
    ``L (L + 1) / 2`` and averaged over batch and heads. Random uniform codes give about
    ``blocks / block_size`` (the touched fraction's floor, 11.8% for 8 x 64, is
    ``1 - (1 - 1/block_size)^blocks``); codes that share no block with unselected keys give 0.

    >>> import torch
    >>> z = torch.zeros(1, 1, 3, 2, 4); z[..., 0] = 30.0   # every code picks index 0: 2 shared blocks
    >>> round(float(overlap_loss(z, z)), 3)
    2.0
    >>> w = torch.tensor([[[[0], [0], [1]]]])                 # query i selects one key
    >>> round(float(overlap_loss(z, z, w)), 3)                # 6 pairs, 3 selected: half left
    1.0
    """
    return _overlap_loss(q_logits.softmax(-1), k_logits.softmax(-1), winners, valid)


def _overlap_loss(pq, pk, winners=None, valid=None):
    """:func:`overlap_loss` from the blocks' softmax ``pq``, ``pk`` ``(B, H, L, blocks, size)``."""
    n = pq.shape[2]
    pq, pk = pq.flatten(-2), pk.flatten(-2)                    # (B, H, L, blocks * size)
    shared = (pq * pk.cumsum(2)).sum(-1)                       # (B, H, L): sum over keys j <= i
    if winners is not None:
        ok = winners >= 0 if valid is None else valid & (winners >= 0)
        for r in range(winners.shape[-1]):
            idx = winners[..., r].clamp(min=0)[..., None].expand(-1, -1, -1, pk.shape[-1])
            shared = shared - (pq * pk.gather(2, idx)).sum(-1) * ok[..., r]
    return shared.sum(-1).mean() / (n * (n + 1) / 2)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def sparse_code_shape(code, code_bits=None, blocks=None, block_size=None):
    """``(code_bits, blocks, block_size)`` of a Q/K code, checked (blocks/block_size None: dense).

    Dense codes: ``code_bits`` (default 64). Sparse codes: ``block_size`` is required;
    ``blocks`` defaults to ``code_bits // block_size`` (``block_size`` must divide ``code_bits``)
    and ``code_bits`` to ``blocks * block_size``.

    >>> sparse_code_shape("sparse", 256, block_size=16)
    (256, 16, 16)
    """
    if code not in CODES:
        raise ValueError(f"code must be one of {CODES}, got {code!r}")
    if code == "dense":
        if blocks is not None or block_size is not None:
            raise ValueError("blocks and block_size are for code='sparse'; got code='dense'")
        return _positive_int(64 if code_bits is None else code_bits, "code_bits"), None, None
    if block_size is None:
        raise ValueError("code='sparse' needs block_size (elements per block)")
    block_size = _positive_int(block_size, "block_size")
    if block_size > 1 << 16:
        raise ValueError(f"block_size must be <= 65536 for a trained code, got {block_size}")
    if blocks is None:
        code_bits = _positive_int(64 if code_bits is None else code_bits, "code_bits")
        if code_bits % block_size:
            raise ValueError(f"block_size must divide code_bits, got block_size={block_size} and "
                             f"code_bits={code_bits}")
        return code_bits, code_bits // block_size, block_size
    blocks = _positive_int(blocks, "blocks")
    if code_bits is not None and code_bits != blocks * block_size:
        raise ValueError(f"code_bits must equal blocks * block_size, got code_bits={code_bits}, "
                         f"blocks={blocks}, block_size={block_size}")
    return blocks * block_size, blocks, block_size


def kwta_select(scores, topk, causal=True, min_score=None):
    """Winner indices ``(..., Lq, k)`` (k = min(topk, Lk)) and their validity mask.

    Highest score first, ties by smaller key index; slots past the visible count (and, with
    ``min_score``, keys scoring below it) are -1/False.
    ``scores`` hold exact small integers (Hamming scores), so the key
    ``score * Lk + (Lk - 1 - j)`` orders them without ties; it is exact in float32 while
    ``(max score + 1) * Lk < 2**24`` and computed in float64 beyond.
    """
    n_q, n_k = scores.shape[-2:]
    k = min(topk, n_k)
    with torch.no_grad():
        exact32 = (float(scores.max()) + 1) * n_k < 2 ** 24 if scores.numel() else True
        dtype = torch.float32 if exact32 else torch.float64
        j = torch.arange(n_k, device=scores.device, dtype=dtype)
        key = scores.to(dtype).round() * n_k + (n_k - 1 - j)
        if causal:
            visible = j[None, :] <= (torch.arange(n_q, device=scores.device)[:, None] + n_k - n_q)
            key = key.masked_fill(~visible, -1)
        if min_score is not None:
            key = key.masked_fill(scores < min_score, -1)
        top, idx = key.topk(k, dim=-1, sorted=True)
        valid = top >= 0
        idx = idx.masked_fill(~valid, -1)
    return idx, valid


class HammingKWTAAttention(nn.Module):
    """Multi-head causal attention with Hamming k-WTA selection (or dense softmax).

    Args: ``d_model`` width, ``n_heads`` heads, ``code_bits`` Q/K code bits per head,
    ``topk`` winners per query, ``attention`` "kwta" or "dense", ``temperature`` of the softmax
    over winners' scores (default ``sqrt(code_bits) / 2``; 1 for sparse codes), ``causal``,
    ``learn_temperature``: k-WTA only, one temperature per head learned from ``temperature``
    (as ``log_temperature``). The codes are +-1, so the temperature is the only way a k-WTA head
    can sharpen or flatten its mix; dense attention already scales ``q . k`` through its
    projections and ignores the flag. ``code="sparse"`` with ``block_size`` (and ``blocks``, by
    default ``code_bits // block_size``; ``code_bits`` defaults to ``blocks * block_size``):
    sparse block Q/K codes scored by overlap, k-WTA only (see the module docstring).

    Shapes: x ``(B, L, d_model)`` -> ``(B, L, d_model)``; with ``return_winners=True`` also the
    winners ``(B, n_heads, L, topk)`` int64 padded with -1 (None for dense).

    >>> import torch
    >>> att = HammingKWTAAttention(32, n_heads=2, code_bits=64, topk=4)
    >>> y, win = att(torch.randn(3, 10, 32), return_winners=True)
    >>> tuple(y.shape), tuple(win.shape)
    ((3, 10, 32), (3, 2, 10, 4))
    """

    def __init__(self, d_model, n_heads=4, code_bits=None, topk=8, attention="kwta", temperature=None,
                 causal=True, learn_temperature=False, code="dense", blocks=None, block_size=None):
        super().__init__()
        # sparse codes with HDTransformer(balance > 0 / overlap > 0): the last training forward's
        # balance and overlap losses
        self.track_balance, self.balance_loss = False, None
        self.track_overlap, self.overlap_loss = False, None
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        code_bits, blocks, block_size = sparse_code_shape(code, code_bits, blocks, block_size)
        if code == "sparse" and attention != "kwta":
            raise ValueError(f"code='sparse' needs attention='kwta', got attention={attention!r}")
        self.code, self.blocks, self.block_size = code, blocks, block_size
        for name, value in (("d_model", d_model), ("n_heads", n_heads), ("code_bits", code_bits),
                            ("topk", topk)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got {d_model} and {n_heads}")
        self.d_model, self.n_heads, self.code_bits, self.topk = d_model, n_heads, code_bits, topk
        self.attention, self.causal = attention, bool(causal)
        self.d_head = d_model // n_heads
        default_temperature = 1.0 if code == "sparse" else math.sqrt(code_bits) / 2
        self.temperature = float(temperature) if temperature is not None else default_temperature
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.learn_temperature = bool(learn_temperature) and attention == "kwta"
        if self.learn_temperature:
            self.log_temperature = nn.Parameter(torch.full((n_heads,), math.log(self.temperature)))
        self.q_proj = nn.Linear(d_model, n_heads * code_bits)
        self.k_proj = nn.Linear(d_model, n_heads * code_bits)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x, width):
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, width).transpose(1, 2)     # (B, H, L, width)

    def _block_codes(self, raw):
        """Softmax ``(B, H, L, blocks, size)`` and argmax ``(B, H, L, blocks)`` of a sparse code's
        projection ``raw`` ``(B, L, H * blocks * size)``."""
        b, n, _ = raw.shape
        logits = raw.view(b, n, self.n_heads, self.blocks, self.block_size)
        probs = logits.softmax(-1).transpose(1, 2)
        return probs, logits.detach().argmax(-1).transpose(1, 2).contiguous()

    def forward(self, x, return_winners=False):
        b, n, _ = x.shape
        qraw, kraw = self.q_proj(x), self.k_proj(x)
        q, k = self._split(qraw, self.code_bits), self._split(kraw, self.code_bits)
        v = self._split(self.v_proj(x), self.d_head)
        winners = None
        if self.attention == "dense":
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.code_bits)
            if self.causal:
                mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(mask, float("-inf"))
            weights = scores.softmax(-1)
        else:
            if self.code == "sparse":
                # softmax and argmax on the projections' own layout (B, L, H, blocks, size):
                # contiguous rows, about 2x faster than on the (B, H, L, ...) view
                pq, iq = self._block_codes(qraw)
                pk, ik = self._block_codes(kraw)
                self.balance_loss = (_balance_loss(pq, iq, pk, ik)
                                     if self.training and self.track_balance else None)
                scores = sparse_overlap(iq, ik)
                idx, valid = kwta_select(scores, self.topk, self.causal, min_score=1)
                self.overlap_loss = (_overlap_loss(pq, pk, idx, valid)
                                     if self.training and self.track_overlap else None)
            else:
                qc, kc = ste_sign(q), ste_sign(k)
                scores = (self.code_bits + qc @ kc.transpose(-1, -2)) * 0.5     # bits - hamming
                idx, valid = kwta_select(scores, self.topk, self.causal)
            temperature = (self.log_temperature.exp().view(1, -1, 1, 1) if self.learn_temperature
                           else self.temperature)
            won = idx.clamp(min=0)
            if self.code == "sparse":
                picked = _WinnerOverlap.apply(pq, pk, iq, ik, won, valid) / temperature
            else:
                picked = scores.gather(-1, won) / temperature
            # finite fill: a sparse-code query may have no winner at all (its weights are then 0)
            picked = picked.masked_fill(~valid, torch.finfo(picked.dtype).min)
            w = picked.softmax(-1)
            weights = torch.zeros(scores.shape, dtype=w.dtype, device=w.device).scatter_add(-1, won, w * valid)
            if return_winners:
                pad = self.topk - idx.shape[-1]
                winners = F.pad(idx, (0, pad), value=-1) if pad else idx
        out = (weights @ v).transpose(1, 2).reshape(b, n, self.d_model)
        out = self.out_proj(out)
        return (out, winners) if return_winners else out


class VoterHead(nn.Module):
    """Each output bit decided by ``n_voters`` sigmoid voters mixed by learned vote weights.

    ``p_bit = sum_v softmax(temperature * vote)_v * sigmoid(w_v . x + b_v)``; the default
    temperature is ``0.05 * n_voters``. Train with binary cross-entropy on bits
    (:meth:`loss`); e.g. predict a byte (or a token index) as 8 bits.

    ``forward(x, voter_flip=mask)`` inverts the voters where the bool ``mask`` ``(n_bits,
    n_voters)`` is True (``p -> 1 - p``): a stuck or flipped voter, for fault-injection studies
    (``hdc experiment biterror``; the exported model takes a fraction, ``voter_flip=p``).

    Shapes: x ``(..., in_features)`` -> bit probabilities ``(..., n_bits)``.

    >>> import torch
    >>> head = VoterHead(16, n_bits=8, n_voters=4)
    >>> p = head(torch.randn(5, 16))
    >>> tuple(p.shape), bool(((p > 0) & (p < 1)).all())
    ((5, 8), True)
    """

    def __init__(self, in_features, n_bits, n_voters=8, temperature=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("n_bits", n_bits), ("n_voters", n_voters)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_features, self.n_bits, self.n_voters = in_features, n_bits, n_voters
        self.temperature = 0.05 * n_voters if temperature is None else float(temperature)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.voters = nn.Linear(in_features, n_bits * n_voters)
        self.vote = nn.Parameter(torch.randn(n_bits, n_voters) * 0.1)

    def vote_weights(self):
        """``(n_bits, n_voters)`` mixing weights, each row summing to 1."""
        return (self.temperature * self.vote).softmax(-1)

    def active_voters(self, threshold=1e-3):
        """Mean number of voters per bit whose weight exceeds ``threshold``."""
        return float((self.vote_weights() > threshold).sum(-1).float().mean())

    def forward(self, x, voter_flip=None):
        p = torch.sigmoid(self.voters(x).view(*x.shape[:-1], self.n_bits, self.n_voters))
        if voter_flip is not None:                     # (n_bits, n_voters) bool: invert those voters
            p = torch.where(voter_flip, 1 - p, p)
        return (p * self.vote_weights()).sum(-1).clamp(1e-7, 1 - 1e-7)

    @staticmethod
    def loss(p, bits):
        """Binary cross-entropy of probabilities ``p`` against 0/1 ``bits`` (same shape)."""
        return F.binary_cross_entropy(p, bits.to(p.dtype))


def index_bits(index, n_bits):
    """Integer tensor ``(...)`` -> its ``n_bits`` little-endian bits ``(..., n_bits)`` as 0/1 floats."""
    shifts = torch.arange(n_bits, device=index.device)
    return ((index[..., None] >> shifts) & 1).float()


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln1(x))`` then ``x + ff(ln2(x))``."""

    def __init__(self, d_model, n_heads, code_bits, topk, attention, temperature, d_ff,
                 learn_temperature=False, code="dense", blocks=None, block_size=None, ffn_topk=None,
                 ffn_straight_through=False):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = HammingKWTAAttention(d_model, n_heads, code_bits, topk, attention, temperature,
                                         learn_temperature=learn_temperature, code=code,
                                         blocks=blocks, block_size=block_size)
        self.ffn_topk = ffn_topk
        self._ffn_kwta = kwta_ste if ffn_straight_through else kwta_mask
        self.ln2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)

    def forward(self, x, return_winners=False):
        a, winners = self.attn(self.ln1(x), return_winners=True)
        x = x + a
        hidden = F.gelu(self.ff1(self.ln2(x)), approximate="tanh")
        if self.ffn_topk is not None:
            hidden = self._ffn_kwta(hidden, self.ffn_topk)
        x = x + self.ff2(hidden)
        return x, winners


class HDTransformer(nn.Module):
    """Decoder-only transformer with Hamming k-WTA attention (or the dense baseline).

    Token embedding + learned positional embedding (+ with ``token_shift`` ``W`` an embedding of
    each of the ``W - 1`` previous tokens: a width-``W`` causal convolution over the tokens, the
    short convolution of H3/Based; ``True`` is 2, ``False`` 1), ``n_layers`` pre-norm blocks
    (attention, GELU feed-forward; ``learn_temperature``: a learned softmax temperature per
    k-WTA head; ``code="sparse"``, ``blocks``, ``block_size``: sparse block Q/K codes;
    ``ffn_topk``: only that many hidden feed-forward units pass per token, trained with the exact
    gradient (``ffn_straight_through=True``: straight through, :func:`kwta_ste`); ``balance``: weight of
    the sparse codes' load-balancing loss, ``overlap``: weight of their penalty on blocks shared
    with unselected keys, both in :meth:`aux_loss`), a final LayerNorm
    and an output head: ``"linear"`` logits
    over the vocabulary, or ``"voter"`` (a :class:`VoterHead` predicting the token index as
    ``ceil(log2 vocab_size)`` bits).

    Shapes: tokens ``(B, L)`` int64 with ``L <= max_len`` -> logits ``(B, L, vocab_size)``
    (linear) or bit probabilities ``(B, L, n_bits)`` (voter). ``forward(tokens,
    return_winners=True)`` also returns the per-layer winners ``(B, n_heads, L, topk)``.

    >>> import torch
    >>> m = HDTransformer(vocab_size=20, d_model=32, n_layers=1, n_heads=2, code_bits=64, topk=4)
    >>> tuple(m(torch.randint(0, 20, (2, 12))).shape)
    (2, 12, 20)
    >>> packed = m.export()          # torch-free: NumPy + hdc kernels
    """

    def __init__(self, vocab_size, d_model=128, n_layers=2, n_heads=4, code_bits=None, topk=8,
                 attention="kwta", max_len=256, d_ff=None, temperature=None, head="linear",
                 n_voters=8, voter_temperature=None, token_shift=True, learn_temperature=False,
                 code="dense", blocks=None, block_size=None, ffn_topk=None, balance=0.0, overlap=0.0,
                 ffn_straight_through=False):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        for name, value in (("vocab_size", vocab_size), ("n_layers", n_layers), ("max_len", max_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        d_ff = 4 * d_model if d_ff is None else d_ff
        code_bits, blocks, block_size = sparse_code_shape(code, code_bits, blocks, block_size)
        if ffn_topk is not None and not (_positive_int(ffn_topk, "ffn_topk") <= d_ff):
            raise ValueError(f"ffn_topk must be <= d_ff ({d_ff}), got {ffn_topk}")
        if not isinstance(ffn_straight_through, bool):
            raise ValueError(f"ffn_straight_through must be a bool, got {ffn_straight_through!r}")
        for name, value in (("balance", balance), ("overlap", overlap)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
            if value and code != "sparse":
                raise ValueError(f"{name} is for code='sparse' (a loss on block indices), got code={code!r}")
        self.config = dict(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                           code_bits=code_bits, topk=topk, attention=attention, max_len=max_len,
                           d_ff=d_ff, temperature=temperature, head=head, n_voters=n_voters,
                           voter_temperature=voter_temperature, token_shift=token_shift_width(token_shift),
                           learn_temperature=bool(learn_temperature), code=code, blocks=blocks,
                           block_size=block_size, ffn_topk=ffn_topk, ffn_straight_through=ffn_straight_through,
                           balance=float(balance),
                           overlap=float(overlap))
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        for name in token_shift_weights(self.config["token_shift"]):
            setattr(self, name[:-len(".weight")], nn.Embedding(vocab_size, d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, code_bits, topk, attention, temperature, d_ff,
                                          learn_temperature, code, blocks, block_size, ffn_topk,
                                          ffn_straight_through)
                                    for _ in range(n_layers))
        for block in self.blocks:
            block.attn.track_balance = bool(balance)
            block.attn.track_overlap = bool(overlap)
        # fraction of ``overlap`` in :meth:`aux_loss`; :func:`hdc.nn.training.train` ramps it
        # from 0 (``overlap_start``), so the codes first learn to match
        self.overlap_scale = 1.0
        self.ln_f = nn.LayerNorm(d_model)
        self.n_bits = max(1, math.ceil(math.log2(vocab_size)))
        if head == "linear":
            self.head = nn.Linear(d_model, vocab_size)
        else:
            self.head = VoterHead(d_model, self.n_bits, n_voters, voter_temperature)
        self.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens, return_winners=False, voter_flip=None):
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
        n = tokens.shape[1]
        if n > self.config["max_len"]:
            raise ValueError(f"sequence length {n} exceeds max_len={self.config['max_len']}")
        x = self.tok(tokens) + self.pos(torch.arange(n, device=tokens.device))
        for s, name in enumerate(token_shift_weights(self.config["token_shift"]), start=1):
            if s < n:
                x = x + F.pad(getattr(self, name[:-len(".weight")])(tokens[:, :-s]), (0, 0, s, 0))
        winners = []
        for block in self.blocks:
            x, w = block(x)
            winners.append(w)
        x = self.ln_f(x)
        out = self.head(x) if self.config["head"] == "linear" else self.head(x, voter_flip=voter_flip)
        return (out, winners) if return_winners else out

    def aux_loss(self):
        """``balance`` times the mean sparse-code balance loss (:func:`balance_loss`) plus
        ``overlap * overlap_scale`` times the mean overlap penalty (:func:`overlap_loss`) of the
        last training forward, or None (neither option, or no training forward since the last call). Consumes
        the stored losses, so the model holds no graph afterwards."""
        total = None
        for name in ("balance", "overlap"):
            losses = [getattr(b.attn, f"{name}_loss") for b in self.blocks
                      if getattr(b.attn, f"{name}_loss") is not None]
            for block in self.blocks:
                setattr(block.attn, f"{name}_loss", None)
            if losses:
                weight = self.config.get(name, 0.0) * (self.overlap_scale if name == "overlap" else 1.0)
                term = weight * torch.stack(losses).mean()
                total = term if total is None else total + term
        return total

    def n_parameters(self):
        return sum(p.numel() for p in self.parameters())

    def key_cache_bytes_per_token(self):
        """Bytes cached per token for keys: packed codes (kwta: bits / 8, or one index per block
        for sparse codes) or float32 keys (dense)."""
        return key_cache_bytes_per_token(self.config)

    def export(self):
        """A torch-free :class:`hdc.nn.packed.PackedModel` with the same weights and outputs."""
        from .packed import PackedModel
        arrays = {name: t.detach().cpu().numpy().astype("float32") for name, t in self.state_dict().items()}
        return PackedModel(dict(self.config), arrays)

    def save(self, path, **extra):
        """``torch.save`` of ``{"config", "state_dict", **extra}`` (plain types; weights-only loadable)."""
        torch.save({"config": dict(self.config), "state_dict": self.state_dict(), **extra}, path)

    @classmethod
    def load(cls, path):
        """Rebuild a model saved by :meth:`save` (``torch.load(weights_only=True)``: no code runs)."""
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        return model
