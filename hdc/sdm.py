"""``SparseDistributedMemory``: Kanerva's sparse distributed memory on packed hypervectors."""
import math

import numpy as np

from ._validate import check_dim, check_int
from .backend import kernels
from .hv import BinaryHV
from .ops import as_hv, cdist, random

__all__ = ["SparseDistributedMemory"]


def _activations(addresses, locations, radius):
    """CSR ``(ptr int64 (n + 1,), idx int64)``: the locations within ``radius`` of each address."""
    try:
        from .search import within
    except ImportError:  # radius search not available: scan the locations in blocks with cdist
        within = None
    if within is not None:
        lims, _, idx = within(addresses, locations, radius, flat=True)
        # within orders each address's hits nearest first; the kernels do not care about order
        return np.ascontiguousarray(lims, np.int64), np.ascontiguousarray(idx, np.int64)
    ptr, hits = [0], []
    for start in range(0, len(addresses), 256):
        d = cdist(addresses[start:start + 256], locations)
        for row in d:
            found = np.flatnonzero(row <= radius)
            hits.append(found)
            ptr.append(ptr[-1] + found.size)
    idx = np.concatenate(hits) if hits else np.empty(0, np.int64)
    return np.asarray(ptr, np.int64), idx.astype(np.int64)


class SparseDistributedMemory:
    """Kanerva's SDM: random hard locations, each with one counter per element.

    ``write(address, data)`` adds ``+1`` for each 1 bit and ``-1`` for each 0 bit of ``data`` to
    the counters of every hard location within Hamming distance ``radius`` of ``address``;
    ``read(address)`` sums the counters of the locations active for ``address`` and returns
    their sign (a zero sum takes the bit of ``self.tie``, a random vector from ``seed``).
    A location is active with probability :meth:`activation_probability` for a random address.

    Shapes: ``address``/``data`` BinaryHV ``(n,)`` or ``()``; ``read`` returns the same batch shape.

    >>> import hdc
    >>> sdm = hdc.SparseDistributedMemory(256, n_locations=2000, radius=111, seed=0)
    >>> keys, values = hdc.random(20, 256, seed=1), hdc.random(20, 256, seed=2)
    >>> sdm.write(keys, values)
    >>> bool((sdm.read(keys) == values).all())
    True
    """

    def __init__(self, dim, n_locations, radius, seed=None, dtype=np.int32):
        self.dim = check_dim(dim)
        self.n_locations = check_int(n_locations, "n_locations", low=1)
        self.radius = check_int(radius, "radius", low=0, high=self.dim)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.int16, np.int32, np.int64):
            raise ValueError(f"dtype must be int16, int32 or int64, got {self.dtype}")
        seq = np.random.SeedSequence(seed)
        loc_seed, tie_seed = seq.spawn(2)
        self.seed = seq.entropy
        self.locations = random(self.n_locations, self.dim, seed=loc_seed)
        self.tie = random(1, self.dim, seed=tie_seed)[0]
        self.counters = np.zeros((self.n_locations, self.dim), self.dtype)
        self.n_writes = 0

    def activation_probability(self):
        """P(a hard location lies within ``radius`` of a random address) = P(Bin(dim, 1/2) <= radius)."""
        return math.fsum(math.comb(self.dim, k) for k in range(self.radius + 1)) / 2.0 ** self.dim

    def expected_bit_error(self, n_writes):
        """Expected fraction of wrong bits when reading at a written address, after ``n_writes``
        writes of random data at random addresses (Kanerva's analysis, normal approximation).

        Reading at address ``a`` with ``m`` active locations sums ``m`` copies of the stored bit
        (as +-1) and, from each of the other ``n_writes - 1`` writes, ``o ~ Bin(m, p)`` random
        +-1 values; the bit is wrong when the noise outweighs the signal:
        ``P(error | m) = Phi(-m / sqrt((n_writes - 1) (m p (1 - p) + (m p)^2)))``, averaged over
        ``m ~ Bin(n_locations, p)`` (``m = 0`` excluded: such a read raises).
        """
        n_writes = check_int(n_writes, "n_writes", low=1)
        p = self.activation_probability()
        m = np.arange(1, self.n_locations + 1, dtype=np.float64)
        log_pmf = (math.lgamma(self.n_locations + 1) - np.array([math.lgamma(k + 1) for k in m])
                   - np.array([math.lgamma(self.n_locations - k + 1) for k in m])
                   + m * math.log(p) + (self.n_locations - m) * math.log1p(-p)) if 0 < p < 1 else None
        if log_pmf is None:
            return 0.0
        pmf = np.exp(log_pmf)
        var = (n_writes - 1) * (m * p * (1 - p) + (m * p) ** 2)
        with np.errstate(divide="ignore"):
            z = np.where(var > 0, m / np.sqrt(np.maximum(var, 1e-300)), np.inf)
        err = 0.5 * np.array([math.erfc(v / math.sqrt(2)) for v in z])
        return float(np.sum(pmf * err) / np.sum(pmf))

    def _check(self, x, name):
        as_hv(x, name)
        if x.dim != self.dim:
            raise ValueError(f"{name} must have dim {self.dim}, got {x.dim}")
        if x.ndim > 1:
            raise ValueError(f"{name} must be a single hypervector or a 1-D batch, got batch shape {x.shape}")
        return x.reshape(-1) if x.ndim == 0 else x

    def active(self, address):
        """Indices of the locations active for each address: ``(ptr (n + 1,), idx)`` in CSR form."""
        return _activations(self._check(address, "address"), self.locations, self.radius)

    def write(self, address, data):
        """Write ``data[i]`` at ``address[i]`` (a single vector or equal-length batches)."""
        addr, dat = self._check(address, "address"), self._check(data, "data")
        if len(addr) != len(dat):
            raise ValueError(f"address and data must have the same length, got {len(addr)} and {len(dat)}")
        ptr, idx = _activations(addr, self.locations, self.radius)
        limit = np.iinfo(self.dtype).max
        if self.n_writes + len(addr) > limit:
            raise ValueError(f"too many writes for {self.dtype} counters (limit {limit}); use dtype=np.int64")
        kernels().sdm_write(self.counters, ptr, idx, dat.words, self.dim)
        self.n_writes += len(addr)

    def read_sums(self, address):
        """Summed counters of the active locations, int64 ``(n, dim)``, and the active counts ``(n,)``."""
        addr = self._check(address, "address")
        ptr, idx = _activations(addr, self.locations, self.radius)
        sums = np.empty((len(addr), self.dim), np.int64)
        if len(addr):
            kernels().sdm_read(self.counters, ptr, idx, sums)
        return sums, np.diff(ptr)

    def read(self, address):
        """Majority read at each address: 1 where the summed counters are > 0, 0 where < 0.

        Raises ValueError when no location is within ``radius`` of an address (raise the radius
        or add locations).
        """
        sums, n_active = self.read_sums(address)
        empty = np.flatnonzero(n_active == 0)
        if empty.size:
            raise ValueError(f"no hard location lies within radius {self.radius} of address {int(empty[0])}; "
                             "increase radius or n_locations")
        ties = self.tie.to_bool()
        bits = (sums > 0) | ((sums == 0) & ties)
        out = BinaryHV.from_bool(bits)
        return out[0] if as_hv(address, "address").ndim == 0 else out

    def __repr__(self):
        return (f"SparseDistributedMemory(dim={self.dim}, n_locations={self.n_locations}, "
                f"radius={self.radius}, writes={self.n_writes})")
