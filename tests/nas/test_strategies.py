"""Search strategies: budget feasibility, bounded retries, replay determinism, evolution, Optuna resume."""
import time

import pytest

from nas.budget import BudgetInfeasibleError
from nas.objectives import ObjectiveError
from nas.strategies import (EvolutionSettings, Objective, StrategyError, TrialResult, create_strategy,
                            list_strategies)
from supernet import get_space

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

CYCLEGAN = get_space("channels-64-cycleGAN")  # 5^8 configs: rejection sampling
TINY = get_space("channels-16")  # 3^8 configs: enumerated
FID = [Objective("fid", "minimize")]
WEIGHTS = (5, 1, 9, 3, 3, 3, 1, 5)
QUICK = {"nsga2": {"population_size": 6, "max_tries": 30}, "tpe": {"n_startup_trials": 4, "max_tries": 30}}


def resnet_macs(config, size=256, n_blocks=9):
    """Closed-form MACs of the ResNet generator at a channel config (ANCHORS' convention)."""
    c0, c1, c2, b1, b2, b3, u1, u2 = config
    full, half, quarter = size * size, (size // 2) ** 2, (size // 4) ** 2
    macs = full * c0 * 3 * 49 + half * 2 * c1 * c0 * 9 + quarter * 4 * c2 * 2 * c1 * 9
    macs += sum(n_blocks // 3 * 2 * quarter * 9 * 4 * c2 * 4 * b for b in (b1, b2, b3))
    return macs + half * 2 * u1 * 4 * c2 * 9 + full * u2 * 2 * u1 * 9 + full * 3 * u2 * 49


def fid(config):
    """A synthetic metric: wider is better, some positions matter more (optimum on the budget's edge)."""
    return sum(w * 64 / c for w, c in zip(WEIGHTS, config))


def evaluate(configs, failed=()):
    return [TrialResult(c, resnet_macs(c), {} if c in failed else {"fid": fid(c)}, failed=c in failed)
            for c in configs]


def make(name, space=CYCLEGAN, budgets=(8_000_000_000,), seed=0, settings=None, objectives=FID, **kw):
    return create_strategy(name, space, objectives, resnet_macs, budgets, seed,
                           QUICK.get(name, {}) if settings is None else settings, **kw)


def test_closed_form_matches_the_papers_figure():
    assert resnet_macs((64,) * 8) == 56_799_264_768


def test_registry_and_settings_errors():
    assert list_strategies() == ["evolution", "nsga2", "random", "tpe"]
    with pytest.raises(StrategyError, match="unknown search strategy 'grid'; registered: evolution, nsga2"):
        make("grid")
    with pytest.raises(StrategyError, match="unknown setting.*popsize.*allowed: max_tries"):
        make("evolution", settings={"popsize": 10})
    with pytest.raises(StrategyError, match="parent_ratio must be a number in"):
        make("evolution", settings={"parent_ratio": 1.5})
    with pytest.raises(ObjectiveError, match="direction 'down'"):
        Objective("fid", "down")
    assert make("random", objectives=[{"metric": "miou", "direction": "maximize"}, ("macs", "minimize")]
                ).objectives == (Objective("miou", "maximize"), Objective("macs"))
    with pytest.raises(StrategyError, match="objective names must be distinct"):
        make("random", objectives=[Objective("fid"), ("fid", "maximize")])


@pytest.mark.parametrize("name", list_strategies())
def test_infeasible_budget_is_detected_up_front(name):
    smallest = resnet_macs(CYCLEGAN.smallest())  # 3.78G for the plain ResNet
    with pytest.raises(BudgetInfeasibleError, match=r"2.6G \(2,600,000,000 MACs\) is below .* 3.78G"):
        make(name, budgets=(2_600_000_000, 10**10))
    make(name, budgets=(smallest,))  # exactly the smallest subnet is feasible


@pytest.mark.parametrize("name", list_strategies())
def test_proposals_fit_the_budget_and_are_never_repeated(name):
    budget = 8_000_000_000
    strategy = make(name, budgets=(5_000_000_000, budget))
    seen = set()
    for _ in range(3):
        configs = strategy.ask(8)
        assert configs, "a feasible budget must give proposals"
        assert all(CYCLEGAN.contains(c) and resnet_macs(c) <= budget for c in configs)
        assert len(set(configs)) == len(configs) and not seen & set(configs)
        seen.update(configs)
        strategy.tell(evaluate(configs[:-1]))  # the last one stays pending
    assert len(strategy.pending()) == 3
    assert all(c in seen for c in strategy.pending())


def test_random_serves_every_budget():
    small, large = 5_000_000_000, 20_000_000_000
    configs = make("random", budgets=(small, large)).ask(40)
    assert all(resnet_macs(c) <= large for c in configs)
    # uniform under 20G alone would put about 4% under 5G; taking turns puts half there
    assert sum(resnet_macs(c) <= small for c in configs) >= 20


@pytest.mark.parametrize("name", list_strategies())
def test_bounded_retries_return_only_the_few_feasible_configs(name):
    ranked = sorted(TINY, key=resnet_macs)
    budget = resnet_macs(ranked[3])
    feasible = {c for c in TINY if resnet_macs(c) <= budget}
    assert 4 <= len(feasible) < 10
    strategy = make(name, space=TINY, budgets=(budget,))
    start = time.perf_counter()
    first = strategy.ask(100)
    again = strategy.ask(100)
    assert time.perf_counter() - start < 10
    assert set(first) <= feasible and not set(first) & set(again) and set(again) <= feasible
    if name in ("random", "evolution"):  # enumerated: exactly the feasible set, then nothing
        assert set(first) == feasible and again == []


def test_rejection_falls_back_to_growing_configs_under_a_tight_budget():
    """In a large space a budget just above the smallest subnet admits a handful of configs."""
    smallest = CYCLEGAN.smallest()
    budget = resnet_macs(smallest) + 150_000_000
    # a width of 32 anywhere costs at least 151M more, so every feasible config is in {16, 24}^8
    near = [tuple(24 if (mask >> i) & 1 else 16 for i in range(8)) for mask in range(256)]
    assert all(resnet_macs(smallest[:i] + (32,) + smallest[i + 1:]) > budget for i in range(8))
    feasible = {c for c in near if resnet_macs(c) <= budget}
    assert len(feasible) == 3  # the smallest, and 24 at the stem or at the first down-conv
    strategy = make("random", budgets=(budget,), settings={"enumerate_limit": 0, "max_tries": 100})
    start = time.perf_counter()
    found, rest = strategy.ask(100), strategy.ask(100)
    assert time.perf_counter() - start < 10
    assert set(found) <= feasible and len(found) >= len(feasible) // 2
    assert set(rest) <= feasible - set(found)


def run(strategy, rounds, batch=7, failed=()):
    """Ask/tell rounds; returns the proposals of each round."""
    history = []
    for _ in range(rounds):
        configs = strategy.ask(batch)
        history.append(configs)
        strategy.tell(evaluate(configs, failed))
    return history


@pytest.mark.parametrize("name, settings", [("random", None), ("evolution", {"population_size": 10})])
def test_replay_rebuilds_the_same_strategy(name, settings):
    budgets = (5_000_000_000, 8_000_000_000)
    original = make(name, budgets=budgets, settings=settings, seed=3)
    run(original, rounds=5)  # 35 results: past the first population, so evolution is breeding
    assert original.name != "evolution" or original.generation >= 1
    replayed = make(name, budgets=budgets, settings=settings, seed=3)
    replayed.tell(original.results)
    twin = make(name, budgets=budgets, settings=settings, seed=3)
    twin.tell(original.results)
    assert replayed.ask(9) == twin.ask(9) == original.ask(9)  # as if never interrupted
    assert make(name, budgets=budgets, settings=settings, seed=4).ask(9) != make(
        name, budgets=budgets, settings=settings, seed=3).ask(9)


def test_evolution_beats_random_at_equal_evaluations():
    budget = 8_000_000_000
    settings = EvolutionSettings(population_size=20)  # 25% parents, half mutation, p=0.2
    for seed in range(3):
        evolution = make("evolution", budgets=(budget,), settings=settings, seed=seed)
        random_search = make("random", budgets=(budget,), seed=seed)
        run(evolution, rounds=15, batch=15)
        run(random_search, rounds=15, batch=15)
        assert len(evolution.results) == len(random_search.results) == 225
        assert all(r.macs <= budget for r in evolution.results)
        assert evolution.generation >= 10
        initial_best = min(fid(r.config) for r in evolution.results[:20])
        best = min(fid(r.config) for r in evolution.results)
        assert best < initial_best
        assert best < min(fid(r.config) for r in random_search.results)


def test_evolution_crossover_children_take_genes_from_parents():
    settings = EvolutionSettings(population_size=12, parent_ratio=0.25, mutation_ratio=0.0)
    strategy = make("evolution", budgets=(8_000_000_000,), settings=settings, seed=1)
    run(strategy, rounds=1, batch=12)
    parents = [r.config for r in strategy.ranked()[:3]]
    children = strategy.ask(6)
    assert len(children) == 6
    for child in children:
        assert all(gene in {p[i] for p in parents} for i, gene in enumerate(child))


def test_evolution_parents_count_for_every_budget_they_fit():
    small, large = 5_000_000_000, 8_000_000_000
    strategy = make("evolution", budgets=(small, large))
    run(strategy, rounds=2, batch=10, failed=())
    ranked_small, ranked_large = strategy.ranked(small), strategy.ranked(large)
    assert all(r.macs <= small for r in ranked_small)
    assert {r.config for r in ranked_small} < {r.config for r in ranked_large}
    assert [fid(r.config) for r in ranked_large] == sorted(fid(r.config) for r in ranked_large)


def test_failed_results_are_never_parents_nor_proposed_again():
    strategy = make("evolution", settings={"population_size": 4})
    configs = strategy.ask(4)
    strategy.tell(evaluate(configs, failed=set(configs[:2])))
    assert {r.config for r in strategy.ranked()} == set(configs[2:])
    assert not set(run(strategy, rounds=3, batch=5)[0]) & set(configs)


def test_tell_rejects_results_that_do_not_fit_the_search():
    strategy = make("random")
    with pytest.raises(StrategyError, match="not in search space"):
        strategy.tell([TrialResult((13,) * 8, 1, {"fid": 1.0})])
    with pytest.raises(StrategyError, match="lacks objective value.*fid.*failed=True"):
        strategy.tell([TrialResult((16,) * 8, 1, {"kid": 1.0})])
    with pytest.raises(StrategyError, match="non-finite fid; mark it failed=True"):
        strategy.tell([TrialResult((16,) * 8, 1, {"fid": float("nan")})])
    with pytest.raises(StrategyError, match="non-negative"):
        strategy.ask(-1)


@pytest.mark.parametrize("name", ["nsga2", "tpe"])
def test_optuna_strategies_tell_optuna_what_was_rejected(name):
    budget = 5_000_000_000  # tight: many suggestions land over it
    strategy = make(name, budgets=(budget,), objectives=FID + [Objective("macs")])
    run(strategy, rounds=3, batch=6)
    assert len(strategy.results) == 18 and all(r.macs <= budget for r in strategy.results)
    trials = strategy.study.get_trials()
    states = {t.state.name for t in trials}
    assert "PRUNED" in states
    for t in trials:
        if t.state.name == "COMPLETE":
            assert t.constraints["macs"] <= 0 and t.values[1] == resnet_macs(CYCLEGAN.parse(t.user_attrs["ganas_config"]))
        if t.state.name == "PRUNED":
            assert t.constraints["macs"] > 0


@pytest.mark.parametrize("name, where", [("nsga2", "sqlite"), ("tpe", "memory")])
def test_optuna_study_resumes_from_its_storage(name, where, tmp_path):
    # SQLite commits are slow on a shared disk: one strategy goes through a file, the other
    # through an in-memory storage object shared by both strategy objects (same code path).
    storage = f"sqlite:///{tmp_path / 'search.db'}" if where == "sqlite" else optuna.storages.InMemoryStorage()
    kwargs = dict(budgets=(20_000_000_000,), objectives=FID + [Objective("macs")], storage=storage, study_name="s1")
    first = make(name, **kwargs)
    asked = first.ask(3)
    first.tell(evaluate(asked[:2]))  # asked[2] stays pending: the orchestrator "stopped" here
    first.study.ask()  # a crash between ask and recording the config leaves a trial with no config

    resumed = make(name, **kwargs)
    assert set(resumed.results) == set(evaluate(asked[:2]))
    assert resumed.pending() == [asked[2]]
    trials = len(resumed.study.get_trials())
    resumed.tell(evaluate(asked[:2]))  # the orchestrator's replay is a no-op for a stored study
    assert len(resumed.study.get_trials()) == trials
    resumed.tell(evaluate(asked[2:]))
    more = resumed.ask(2)
    assert more and not set(more) & set(asked)
    states = [t.state.name for t in resumed.study.get_trials()]
    assert states.count("COMPLETE") == 3 and states.count("RUNNING") == len(more)
    # the trial left pending by the first session was completed with its constraint, like the others
    assert all("infeasible" in t.constraints for t in resumed.study.get_trials() if t.state.name == "COMPLETE")
    with pytest.raises(StrategyError, match="directions"):
        make(name, **{**kwargs, "objectives": FID})
    with pytest.raises(StrategyError, match="made for objectives"):
        make(name, **{**kwargs, "objectives": [Objective("kid"), Objective("macs")]})


def test_optuna_storage_errors_are_typed():
    with pytest.raises(StrategyError, match="needs a study name"):
        make("tpe", storage="sqlite:///x.db")
    with pytest.raises(StrategyError, match="cannot open Optuna storage"):
        make("tpe", storage="nosuchdb://host/x", study_name="s")
