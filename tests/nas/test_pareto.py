"""Pareto fronts and hypervolume against brute force: pairwise filters and grid-cell unions."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from foundation.errors import GanasError
from nas.objectives import MACS, Objective, ObjectiveError
from nas.pareto import (ParetoError, best_per_budget, dominates, front_of, hypervolume, non_dominated_sort,
                        pareto_front, pareto_ranks)


def brute_front(points, directions):
    """Pairwise O(n^2) non-dominated filter, written independently of the module."""
    sign = np.array([1 if d == "minimize" else -1 for d in directions])
    p = np.asarray(points) * sign
    return [i for i in range(len(p))
            if not any((p[j] <= p[i]).all() and (p[j] < p[i]).any() for j in range(len(p)))]


def grid_hypervolume(points, reference):
    """Count unit cells of the integer grid below ``reference`` that some point dominates."""
    count = 0
    for cell in itertools.product(*(range(int(r)) for r in reference)):
        if any(all(p[k] <= cell[k] for k in range(len(cell))) for p in points):
            count += 1
    return count


def random_points(rng, n, d, high=6):
    return rng.integers(0, high, size=(n, d))  # small integers: many ties and duplicates


def test_front_by_hand():
    points = [(1, 3), (2, 2), (3, 1), (3, 3), (2, 2), (1, 4)]
    assert pareto_front(points) == [0, 1, 2, 4]  # equal points do not dominate each other
    assert pareto_front(points, ["minimize", "maximize"]) == [5]
    assert non_dominated_sort(points) == [[0, 1, 2, 4], [3, 5]]
    assert pareto_ranks(points) == [0, 0, 0, 1, 0, 1]
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (1, 2))
    assert dominates((5, 1), (4, 1), ["maximize", "minimize"])


@pytest.mark.parametrize("d", [2, 3, 4])
def test_front_equals_brute_force(d):
    rng = np.random.default_rng(d)
    for _ in range(30):
        points = random_points(rng, int(rng.integers(1, 40)), d)
        directions = [rng.choice(["minimize", "maximize"]) for _ in range(d)]
        assert pareto_front(points, directions) == brute_front(points, directions)


@pytest.mark.parametrize("d", [2, 3])
def test_non_dominated_sort_peels_fronts(d):
    rng = np.random.default_rng(10 + d)
    for _ in range(20):
        points = random_points(rng, 30, d)
        fronts = non_dominated_sort(points)
        assert sorted(i for f in fronts for i in f) == list(range(len(points)))
        remaining = list(range(len(points)))
        for front in fronts:
            expected = [remaining[i] for i in brute_front(points[remaining], ["minimize"] * d)]
            assert sorted(front) == expected
            remaining = [i for i in remaining if i not in front]
        ranks = pareto_ranks(points)
        for k in range(1, len(fronts)):
            for i in fronts[k]:
                assert any(dominates(points[j], points[i]) for j in fronts[k - 1])
                assert ranks[i] == k


def test_hypervolume_by_hand():
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == 6.0
    assert hypervolume([(1, 1, 1)], (2, 3, 4)) == 6.0
    # boxes [0,2]^3 and [-1,2]x[1,2]x[1,2] overlap in [0,2]x[1,2]x[1,2]: 8 + 3 - 2
    assert hypervolume([(0, 0, 0), (-1, 1, 1)], (2, 2, 2)) == 9.0
    assert hypervolume([(5, 5)], (4, 4)) == 0.0  # beyond the reference point
    assert hypervolume([(4, 1)], (4, 4)) == 0.0  # on its boundary: no volume
    assert hypervolume([], (4, 4)) == 0.0


@pytest.mark.parametrize("d, trials", [(2, 40), (3, 25), (4, 8)])
def test_hypervolume_equals_grid_cell_union(d, trials):
    rng = np.random.default_rng(100 + d)
    reference = [6] * d
    for _ in range(trials):
        points = random_points(rng, int(rng.integers(1, 12)), d, high=7)  # some beyond the reference
        assert hypervolume(points, reference) == grid_hypervolume(points, reference)


def test_hypervolume_with_maximised_objectives_and_dominated_points():
    rng = np.random.default_rng(7)
    points = rng.random((25, 3))
    reference = [1.5, 1.5, 1.5]
    flipped = points * [1, -1, 1]
    assert hypervolume(flipped, [1.5, -1.5, 1.5], ["minimize", "maximize", "minimize"]) == \
        pytest.approx(hypervolume(points, reference))
    worse = np.vstack([points, points[:5] + 0.01])  # dominated additions change nothing
    assert hypervolume(worse, reference) == pytest.approx(hypervolume(points, reference))


def test_hypervolume_agrees_with_optuna():
    hv_module = pytest.importorskip("optuna._hypervolume")
    rng = np.random.default_rng(3)
    for d in (2, 3, 4):
        points = rng.random((40, d))
        reference = np.full(d, 1.1)
        assert hypervolume(points, reference) == pytest.approx(hv_module.compute_hypervolume(points, reference))


@pytest.mark.parametrize("call, says", [
    (lambda: pareto_front([(1, 2)], ["minimize"]), "1 directions given for 2 objectives"),
    (lambda: pareto_front([(1, 2)], ["minimize", "up"]), "unknown direction 'up'"),
    (lambda: pareto_front([(1, float("nan"))]), "NaN"),
    (lambda: pareto_front([1, 2, 3]), "n x d"),
    (lambda: hypervolume([(1, 2)], (3, 3, 3)), "reference point has 3 values for 2 objectives"),
])
def test_bad_input_is_a_typed_error(call, says):
    with pytest.raises(ParetoError, match=says) as info:
        call()
    assert isinstance(info.value, GanasError)


def test_best_per_budget():
    c = SimpleNamespace
    items = [c(name="a", macs=100, fid=30.0), c(name="b", macs=300, fid=20.0), c(name="failed", macs=50, fid=None),
             c(name="c", macs=250, fid=20.0), c(name="d", macs=90, fid=35.0), c(name="nan", macs=10, fid=float("nan"))]
    best = best_per_budget(items, [80, 95, 200, 1000], macs=lambda i: i.macs, value=lambda i: i.fid)
    assert {b: (i.name if i else None) for b, i in best.items()} == {80: None, 95: "d", 200: "a", 1000: "c"}
    best = best_per_budget(items, [1000], macs=lambda i: i.macs, value=lambda i: i.fid, direction="maximize")
    assert best[1000].name == "d"


def test_one_objective_for_the_store_the_strategies_and_the_fronts():
    from nas import store, strategies

    assert store.Objective is strategies.Objective is Objective and strategies.MACS == MACS == "macs"
    miou = Objective("miou", "maximize")
    assert Objective.coerce("miou:maximize") == Objective.coerce(("miou", "maximize")) == miou
    assert Objective.coerce({"metric": "miou", "direction": "maximize"}) == miou
    assert Objective.coerce("fid").direction == "minimize"
    assert miou.oriented(0.5) == -0.5 and miou.to_dict() == {"metric": "miou", "direction": "maximize"}
    for bad, says in (("fid:up", "minimize, maximize"), (" fid", "metric name"), (3, "not a metric name")):
        with pytest.raises(ObjectiveError, match=says) as info:
            Objective.coerce(bad)
        assert isinstance(info.value, GanasError)


def test_front_of_done_candidates_and_its_reference_point():
    def done(config, macs, **metrics):
        return SimpleNamespace(config=config, macs=macs, metrics=metrics)

    psnr = [done("a", 100, psnr=20.0), done("b", 50, psnr=18.0), done("c", 120, psnr=19.0), done("d", 10)]
    front, volume = front_of(psnr, Objective("psnr", "maximize"), [200])
    assert [c.config for c in front] == ["b", "a"]  # c is dominated by a; d has no PSNR
    assert volume == pytest.approx((200.02 - 50) * 18 + (200.02 - 100) * 2)  # reference (largest budget, 0)
    fid = [done("a", 100, fid=10.0), done("b", 50, fid=20.0)]
    front, volume = front_of(fid, Objective("fid"), [100, 300])
    assert [c.config for c in front] == ["b", "a"]
    assert volume == pytest.approx((300.03 - 50) * (22 - 20) + (300.03 - 100) * (20 - 10))  # 1.1 x worst FID
    assert front_of(psnr[3:], Objective("psnr", "maximize"), [200]) == ([], None)


def test_two_objective_sweep_equals_the_definition():
    """The one-sweep front of two objectives (ties and duplicates included) is the definition's, point by point."""
    from nas.pareto import _front_mask

    rng = np.random.default_rng(3)
    for _ in range(200):
        values = rng.integers(0, 6, size=(int(rng.integers(1, 40)), 2)).astype(float)
        expected = [not any(np.all(b <= a) and np.any(b < a) for b in values) for a in values]
        assert _front_mask(values).tolist() == expected, values
