import numpy as np
import pytest

from omnivad.data.balanced import BalancedBatcher, Pool, per_domain_counts, pool_indices, worker_share
from omnivad.data.ray_datasets import resample_segments


def test_per_domain_counts_rotate_remainder():
    # 32 per class over 6 domains: 5 each plus 2 extras that rotate (MDVAD A10)
    c0, c1 = per_domain_counts(0, 6, 32), per_domain_counts(1, 6, 32)
    assert sum(c0) == sum(c1) == 32
    assert c0 == [6, 6, 5, 5, 5, 5]
    assert c1 == [5, 6, 6, 5, 5, 5]
    totals = np.sum([per_domain_counts(s, 6, 32) for s in range(6)], axis=0)
    assert set(totals) == {32}  # over M steps every domain gets the same


def test_worker_share_splits_exactly():
    assert [worker_share(7, r, 3) for r in range(3)] == [3, 2, 2]


def test_pool_indices_cycle_permutations():
    idx = pool_indices(5, (0, 1), 0, 12)
    assert sorted(idx[:5]) == list(range(5)) and sorted(idx[5:10]) == list(range(5))
    # stateless: a window equals the same positions of a longer draw
    np.testing.assert_array_equal(pool_indices(5, (0, 1), 3, 6), idx[3:9])


def _pools(domains, n=7, t=4, c=3, crops=None):
    rng = np.random.default_rng(0)
    pools = {}
    for i, d in enumerate(domains):
        k = (crops or {}).get(d, 2)
        for y in (0, 1):
            pools[(d, y)] = Pool([f"{d}{y}{j}" for j in range(n)], rng.normal(size=(n, t, k, c)).astype(np.float32) + 10 * i + y)
    return pools


def test_batches_are_balanced_and_replayable():
    doms = ["a", "b", "c"]
    b = BalancedBatcher(_pools(doms), doms, {"a": 0, "b": 1, "c": -1}, per_class=8, seed=3)
    batches = [b.batch(s) for s in range(5)]
    for s, batch in enumerate(batches):
        counts = per_domain_counts(s, 3, 8)
        assert batch.x.shape[0] == 16
        for di, dom_idx in enumerate([0, 1, -1]):
            sel = batch.dom == dom_idx
            assert int(sel.sum()) == 2 * counts[di]
            assert int(batch.y[sel].sum()) == counts[di]  # equal normal/abnormal within a domain
    # a fresh batcher seeking straight to step 4 (a resumed run) sees the same batch
    b2 = BalancedBatcher(_pools(doms), doms, {"a": 0, "b": 1, "c": -1}, per_class=8, seed=3)
    assert np.array_equal(b2.batch(4).x.numpy(), batches[4].x.numpy())
    # a different seed gives a different order
    b3 = BalancedBatcher(_pools(doms), doms, {"a": 0, "b": 1, "c": -1}, per_class=8, seed=4)
    assert not np.array_equal(b3.batch(0).x.numpy(), batches[0].x.numpy())


def test_mixed_crop_counts_are_padded_and_masked():
    doms = ["a", "b"]
    b = BalancedBatcher(_pools(doms, crops={"a": 1, "b": 3}), doms, {"a": 0, "b": 1}, per_class=2, seed=0)
    batch = b.batch(0)
    assert batch.x.shape[1] == 3
    a_rows = batch.dom == 0
    assert batch.mask[a_rows].sum(1).tolist() == [1] * int(a_rows.sum())
    assert batch.mask[~a_rows].all()
    # padded crops repeat crop 0
    assert np.array_equal(batch.x[a_rows][:, 2].numpy(), batch.x[a_rows][:, 0].numpy())


def test_empty_pool_is_an_error_naming_the_domain():
    pools = _pools(["a"])
    pools[("a", 1)] = Pool([], np.zeros((0,), np.float32))
    with pytest.raises(ValueError, match="domain 'a': no abnormal"):
        BalancedBatcher(pools, ["a"], {"a": 0}, 4, 0)


def test_resample_mean_matches_rtfm_process_feat():
    feat = np.arange(10, dtype=np.float32).reshape(10, 1, 1)
    out = resample_segments(feat, 4, "mean")
    # linspace(0, 10, 5) -> [0, 2, 5, 7, 10]: chunk means 0.5, 3, 5.5, 8
    np.testing.assert_allclose(out[:, 0, 0], [0.5, 3.0, 5.5, 8.0])
    short = resample_segments(np.arange(3, dtype=np.float32).reshape(3, 1, 1), 6, "mean")
    # empty chunks copy the snippet at their start index
    assert short.shape == (6, 1, 1)
    np.testing.assert_allclose(short[:, 0, 0], [0, 0, 1, 1, 2, 2])
    near = resample_segments(feat, 4, "nearest")
    np.testing.assert_allclose(near[:, 0, 0], [0, 3, 6, 9])
