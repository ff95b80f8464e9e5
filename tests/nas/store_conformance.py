"""The store's contract as one test class, run against every backend (as Optuna tests its storages).

A backend's test module subclasses :class:`StoreConformance` and provides a ``store_url``
fixture yielding the URL of an empty database. Time is a fake clock, so lease and heartbeat
expiry are tested without sleeping.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import threading
import time

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from foundation.errors import GanasError
from nas.store import (LOST_LEASES_LIMIT, SCHEMA_VERSION, CandidateStatus, Database, DuplicateNameError, FinalStatus, FrozenDict,
                       InvalidValueError, LeaseError, Migration, NewFinal, NotFoundError, Objective, SchemaVersionError, SearchBusyError,
                       SearchState, StateTransitionError, Store, ensure_schema)
from nas.store.models import TABLE_PREFIX, candidates, meta, searches
from nas.store.records import thaw

SHA = "0123456789abcdef" * 4
LEASE_INDEX = next(i for i in candidates.indexes if "status" in i.columns)


class FakeClock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_threads(targets):
    """Start callables together (a barrier), join them, re-raise the first exception."""
    barrier, errors = threading.Barrier(len(targets)), []

    def wrap(target):
        def run():
            try:
                barrier.wait()
                target()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


def snapshot(url: str) -> dict:
    """Everything in the database's ganas tables, read by a plain engine (not the store)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            result = {}
            for table in sorted(t for t in insp.get_table_names() if t.startswith(TABLE_PREFIX)):
                columns = sorted(c["name"] for c in insp.get_columns(table))
                indexes = sorted(i["name"] for i in insp.get_indexes(table))
                rows = sorted(map(repr, conn.execute(text(f"SELECT * FROM {table}")).all()))
                result[table] = (columns, indexes, rows)
            return result
    finally:
        engine.dispose()


def set_version(url: str, value: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=value))
    engine.dispose()


class StoreConformance:
    """Every behaviour the orchestrator, workers and dashboard rely on."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, store_url, clock):
        store = Store(store_url, clock=clock)
        yield store
        store.close()

    @pytest.fixture
    def supernet(self, store):
        return store.register_supernet("horse2zebra", architecture="resnet", space="resnet_64", checkpoint="/w/s.pt",
                                       checkpoint_sha256=SHA, hparams={"ngf": 64, "n_blocks": 9},
                                       dataset={"name": "horse2zebra", "split": {"val": 120}}, metrics=["fid"])

    @pytest.fixture
    def search(self, store, supernet):
        return store.create_search(supernet.name, budgets=[3_000_000_000], objectives=["fid"], strategy="random",
                                   trials=50, seed=7, max_attempts=2)

    def add(self, store, search, n, start=0):
        return store.add_candidates(search.id, [(f"{16 + i}_16", 1000 + i, 10 + i) for i in range(start, start + n)])

    # -- schema -----------------------------------------------------------------------------------
    def test_new_database_is_created_at_the_current_version(self, store, store_url):
        tables = snapshot(store_url)
        assert {"ganas_meta", "ganas_supernets", "ganas_searches", "ganas_candidates"} <= set(tables)
        assert tables["ganas_meta"][2] == [repr(("schema_version", str(SCHEMA_VERSION)))]
        assert ensure_schema(store.db) == SCHEMA_VERSION  # reopening finds it current

    def test_newer_schema_version_is_refused_and_nothing_changes(self, store, search, store_url, clock):
        self.add(store, search, 3)
        store.close()
        set_version(store_url, str(SCHEMA_VERSION + 1))
        before = snapshot(store_url)
        with pytest.raises(SchemaVersionError) as info:
            Store(store_url, clock=clock)
        message = str(info.value)
        assert f"version {SCHEMA_VERSION + 1}" in message and f"({SCHEMA_VERSION})" in message
        assert "upgrade ganas" in message
        assert snapshot(store_url) == before

    def test_unknown_schema_version_is_refused(self, store, store_url, clock):
        store.close()
        set_version(store_url, "banana")
        before = snapshot(store_url)
        with pytest.raises(SchemaVersionError, match="'banana'"):
            Store(store_url, clock=clock)
        assert snapshot(store_url) == before

    def _make_version_zero(self, store, store_url):
        """Simulate an older layout: version 0 lacked the lease index that version 1 has."""
        store.close()
        engine = create_engine(store_url)
        with engine.begin() as conn:
            LEASE_INDEX.drop(conn)
        engine.dispose()
        set_version(store_url, "0")

    def test_older_version_is_migrated_step_by_step(self, store, store_url):
        self._make_version_zero(store, store_url)
        steps = {0: Migration(0, "add the lease index", lambda conn: LEASE_INDEX.create(conn))}
        db = Database(store_url)
        try:
            assert ensure_schema(db, current=1, migrations=steps) == 0
            assert ensure_schema(db, current=1, migrations=steps) == 1
        finally:
            db.dispose()
        after = snapshot(store_url)
        assert LEASE_INDEX.name in after["ganas_candidates"][1]
        assert after["ganas_meta"][2] == [repr(("schema_version", "1"))]

    def test_failing_migration_or_missing_step_changes_nothing(self, store, store_url, clock):
        self._make_version_zero(store, store_url)
        before = snapshot(store_url)

        def half_done(conn):
            LEASE_INDEX.create(conn)
            raise RuntimeError("step broke half-way")

        db = Database(store_url)
        try:
            with pytest.raises(RuntimeError, match="half-way"):
                ensure_schema(db, current=1, migrations={0: Migration(0, "broken", half_done)})
        finally:
            db.dispose()
        assert snapshot(store_url) == before
        with pytest.raises(SchemaVersionError, match="no migration from version 0"):
            Store(store_url, clock=clock)  # the shipped registry has no step from 0
        assert snapshot(store_url) == before

    # -- supernets ---------------------------------------------------------------------------------
    def test_supernet_roundtrip(self, store, supernet, clock):
        assert supernet.name == "horse2zebra" and supernet.hparams == {"ngf": 64, "n_blocks": 9}
        assert supernet.dataset["split"]["val"] == 120 and supernet.metrics == ("fid",)
        assert supernet.created_at == clock.now and supernet.checkpoint_sha256 == SHA
        assert store.get_supernet("horse2zebra") == supernet == store.get_supernet(supernet.id)
        other = store.register_supernet("edges", architecture="unet_256", space="unet", checkpoint="/w/u.pt",
                                        checkpoint_sha256=SHA.upper())
        assert other.checkpoint_sha256 == SHA and other.hparams == {} and other.metrics == ()
        assert [s.name for s in store.list_supernets()] == ["horse2zebra", "edges"]

    def test_supernet_name_is_unique(self, store, supernet):
        again = store.register_supernet("horse2zebra", architecture="resnet", space="resnet_64", checkpoint="/w/s.pt",
                                         checkpoint_sha256=SHA, hparams={"ngf": 64, "n_blocks": 9})
        assert again.id == supernet.id
        with pytest.raises(DuplicateNameError, match="already registered"):
            store.register_supernet("horse2zebra", architecture="resnet", space="resnet_64", checkpoint="/w/t.pt",
                                    checkpoint_sha256="f" * 64)
        assert len(store.list_supernets()) == 1

    def test_version_1_searches_move_their_plan_to_the_plan_column(self, store, supernet, store_url, clock):
        """Version 1 kept a search's plan inside strategy_settings; opening the database migrates every row,
        and its tables then look exactly like a new database's."""
        plan = {"evaluation": {"metrics": ["fid"], "size": 32}, "batch_size": 4, "macs_size": [32, 32]}
        layouts = [{"plan": plan, "strategy": {"population_size": 4}}, {"plan": plan}, {"population": 8}]
        made = [store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1)
                for _ in layouts]
        new = snapshot(store_url)
        store.close()
        engine = create_engine(store_url)  # turn it into a version 1 database written by ganas search start
        with engine.begin() as conn:
            for search, settings in zip(made, layouts):
                conn.execute(searches.update().where(searches.c.id == search.id).values(strategy_settings=settings))
            _back_to_version_3(conn)
            _back_to_version_2(conn)
            conn.execute(text("ALTER TABLE ganas_searches DROP COLUMN plan"))
        engine.dispose()
        set_version(store_url, "1")
        with Store(store_url, clock=clock) as migrated:
            rows = [migrated.get_search(s.id).to_dict() for s in made]
        assert [(r["plan"], r["strategy_settings"]) for r in rows] == [
            ({"version": 1, **plan}, {"population_size": 4}), ({"version": 1, **plan}, {}), (None, {"population": 8})]
        after = snapshot(store_url)
        assert after["ganas_meta"][2] == [repr(("schema_version", str(SCHEMA_VERSION)))]
        assert {t: v[:2] for t, v in after.items()} == {t: v[:2] for t, v in new.items()}  # columns and indexes

    def test_version_3_stores_count_lost_leases_from_zero(self, store, search, store_url, clock):
        """Version 4 adds ``lost`` to candidates and finals: 0 for existing rows, attempts as they were."""
        self.add(store, search, 2)
        store.lease_candidates(search.id, "w", 1, 60)
        store.add_finals(search.id, [NewFinal("16_16", 1000, 10, steps=5)])
        new = snapshot(store_url)
        store.close()
        engine = create_engine(store_url)
        with engine.begin() as conn:
            _back_to_version_3(conn)
        engine.dispose()
        set_version(store_url, "3")
        with Store(store_url, clock=clock) as migrated:
            listed = migrated.candidates(search.id)
            assert [(c.status, c.attempts, c.lost) for c in listed] == [(CandidateStatus.LEASED, 1, 0),
                                                                        (CandidateStatus.QUEUED, 0, 0)]
            assert [f.lost for f in migrated.finals(search.id)] == [0]
            assert migrated.requeue_leased(search.id) == 1 and migrated.get_candidate(listed[0].id).lost == 1
        after = snapshot(store_url)
        assert {t: v[:2] for t, v in after.items()} == {t: v[:2] for t, v in new.items()}

    def test_version_2_stores_gain_teachers_and_the_finals_table(self, store, supernet, search, store_url, clock):
        """Version 3 adds the teacher columns (None for existing rows) and the finals table."""
        new = snapshot(store_url)
        store.close()
        engine = create_engine(store_url)
        with engine.begin() as conn:
            _back_to_version_3(conn)
            _back_to_version_2(conn)
        engine.dispose()
        set_version(store_url, "2")
        with Store(store_url, clock=clock) as migrated:
            assert migrated.get_supernet(supernet.id).teacher is None and migrated.get_search(search.id).teacher is None
            assert migrated.finals(search.id) == ()
        after = snapshot(store_url)
        assert {t: v[:2] for t, v in after.items()} == {t: v[:2] for t, v in new.items()}


    # -- teachers and finals ---------------------------------------------------------------------------
    def test_a_supernet_and_a_search_record_their_teacher(self, store, supernet, search, clock):
        teacher = {"path": "/w/teacher.pt", "sha256": SHA, "architecture": "resnet", "macs": 56_799_264_768}
        again = store.register_supernet("horse2zebra", architecture="resnet", space="resnet_64", checkpoint="/w/s.pt",
                                        checkpoint_sha256=SHA, hparams={"ngf": 64, "n_blocks": 9}, teacher=teacher)
        assert supernet.teacher is None and thaw(again.teacher) == teacher and again.id == supernet.id
        assert thaw(store.get_supernet(supernet.id).teacher) == teacher
        updated = store.set_search_teacher(search.id, {"fid": 61.5}, "inception=pt", "train2")
        assert thaw(updated.teacher) == {"metrics": {"fid": 61.5}, "evaluator": "inception=pt", "split": "train2"}
        with pytest.raises(InvalidValueError, match="not a finite number"):
            store.set_search_teacher(search.id, {"fid": math.nan}, "x", "train2")
        assert thaw(store.get_search(search.id).teacher)["metrics"] == {"fid": 61.5}

    def test_finals_are_queued_once_leased_and_completed_by_their_owner(self, store, search, clock):
        items = [NewFinal("16_16", 1000, 10, steps=50, budget=2000, settings={"lambda_recon": 100.0}),
                 NewFinal("24_16", 1500, 12, steps=50)]
        made = store.add_finals(search.id, items)
        assert [f.status for f in made] == [FinalStatus.QUEUED] * 2 and made[0].budget == 2000
        assert store.add_finals(search.id, items[:1]) == made[:1]  # queued once
        (leased,) = store.lease_finals(search.id, "w0", 1, 60)
        assert (leased.config, leased.status, leased.attempts, leased.lease_owner) == ("16_16", FinalStatus.LEASED,
                                                                                       1, "w0")
        result = dict(before={"miou": 0.5}, after={"miou": 0.6}, teacher={"miou": 0.62}, evaluator="seg", split="val",
                      latency_ms=2.0, teacher_latency_ms=20.0, files={"onnx": "searches/1/final/16_16/subnet.onnx"},
                      export_errors={"onnx": 1e-6}, seconds=3.0)
        with pytest.raises(LeaseError):
            store.complete_final(leased.id, "w1", **result)
        done = store.complete_final(leased.id, "w0", **result)
        assert done.status == FinalStatus.DONE and done.after["miou"] == 0.6 and done.lease_owner is None
        assert store.set_final_model(done.id, "models:/m-1").model_uri == "models:/m-1"
        assert [f.config for f in store.finals(search.id, FinalStatus.DONE)] == ["16_16"]

    def test_finals_retry_and_come_back_to_their_worker(self, store, search, clock):
        store.add_finals(search.id, [NewFinal("16_16", 1000, 10, steps=5), NewFinal("24_16", 1500, 12, steps=5)])
        (first,) = store.lease_finals(search.id, "w0", 1, 60)
        assert store.fail_final(first.id, "w0", "boom").status == FinalStatus.QUEUED  # attempt 1 of 2
        again = store.lease_finals(search.id, "w0", 1, 60)[0]
        assert (again.id, again.attempts) == (first.id, 2)  # its own first
        assert store.requeue_finals(search.id, owner="w0", reason="worker 'w0' lost: ActorDiedError") == 1
        back = store.get_final(first.id)  # a dead worker costs no attempt
        assert (back.status, back.attempts, back.lost) == (FinalStatus.QUEUED, 1, 1)
        assert "w0' lost: ActorDiedError" in back.error and "not counted as an attempt" in back.error
        (third,) = store.lease_finals(search.id, "w0", 1, 60)
        assert store.fail_final(third.id, "w0", "boom").status == FinalStatus.FAILED  # attempt 2 of 2: for good
        (second,) = store.lease_finals(search.id, "w1", 1, 60)
        clock.advance(61)
        assert store.requeue_finals(search.id, expired_before=clock()) == 1  # a hung job: the attempt counts
        expired = store.get_final(second.id)
        assert expired.status == FinalStatus.QUEUED and "expired" in expired.error and expired.last_owner == "w1"
        assert (expired.attempts, expired.lost) == (1, 0)
        store.lease_finals(search.id, "w2", 1, 60)
        assert store.requeue_finals(search.id) == 1  # the finalizer restarted: not counted either
        assert (store.get_final(second.id).attempts, store.get_final(second.id).lost) == (1, 1)
        with pytest.raises(NotFoundError):
            store.get_final(10**6)
        with pytest.raises(InvalidValueError):
            NewFinal("16_16", 1, 1, steps=0)

    # -- searches ----------------------------------------------------------------------------------
    def test_search_plan_is_a_versioned_json_object(self, store, supernet, search):
        plan = {"version": 1, "batch_size": 4, "evaluation": {"metrics": ["fid"]}}
        made = store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1,
                                   plan=plan)
        assert thaw(made.plan) == plan and store.get_search(made.id) == made and search.plan is None
        assert made.to_dict()["plan"] == plan and json.loads(json.dumps(made.to_dict()))["plan"] == plan
        for bad in ({"batch_size": 4}, {"version": "1"}, {"version": 0}, {"version": True}, [1]):
            with pytest.raises(InvalidValueError, match="integer version >= 1"):
                store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1,
                                    plan=bad)
        assert len(store.list_searches()) == 2

    def test_search_roundtrip_and_listing(self, store, supernet, search, clock):
        assert (search.supernet, search.supernet_id, search.state) == ("horse2zebra", supernet.id, SearchState.CREATED)
        assert search.objectives == (Objective("fid", "minimize"),) and not search.multi_objective
        assert (search.seed, search.trials, search.max_attempts, search.owner) == (7, 50, 2, None)
        multi = store.create_search(supernet.id, budgets=[5, 2, 5], strategy="nsga2", trials=9,
                                    objectives=[("macs", "minimize"), {"metric": "miou", "direction": "maximize"}],
                                    strategy_settings={"population": 8, "mutation": {"prob": 0.3}})
        assert multi.budgets == (2, 5) and multi.multi_objective
        assert multi.objectives[1] == Objective("miou", "maximize")
        assert multi.strategy_settings["mutation"]["prob"] == 0.3
        assert store.get_search(multi.id) == multi
        assert [s.id for s in store.list_searches()] == [search.id, multi.id]
        assert [s.id for s in store.list_searches(supernet="horse2zebra", state="created")] == [search.id, multi.id]
        store.set_search_state(multi.id, "running")
        assert [s.id for s in store.list_searches(state=SearchState.RUNNING)] == [multi.id]

    def test_search_state_lifecycle(self, store, search, clock):
        clock.advance(5)
        running = store.set_search_state(search.id, "running")
        assert running.state == SearchState.RUNNING and running.updated_at == clock.now > running.created_at
        assert store.set_search_state(search.id, "running").state == SearchState.RUNNING  # idempotent
        store.set_search_state(search.id, SearchState.PAUSED)
        store.set_search_state(search.id, "running")
        failed = store.set_search_state(search.id, "failed", error="worker pool died")
        assert (failed.state, failed.error) == (SearchState.FAILED, "worker pool died")
        assert store.set_search_state(search.id, "running").error is None  # resumed
        store.set_search_state(search.id, "done")
        with pytest.raises(StateTransitionError, match="is done and cannot become running.*final"):
            store.set_search_state(search.id, "running")
        with pytest.raises(InvalidValueError, match="'finished' is not one of: created, running"):
            store.set_search_state(search.id, "finished")

    def test_claim_refuses_a_second_orchestrator_until_its_heartbeat_lapses(self, store, search, clock):
        t0 = clock.now
        claimed = store.claim_search(search.id, "orch-a", 30)
        assert (claimed.owner, claimed.heartbeat_at, claimed.owner_expires_at) == ("orch-a", t0, t0 + 30)
        with pytest.raises(SearchBusyError, match="orch-a"):
            store.claim_search(search.id, "orch-b", 30)
        clock.advance(20)
        assert store.heartbeat(search.id, "orch-a", 30).owner_expires_at == t0 + 50
        clock.advance(29)
        with pytest.raises(SearchBusyError, match="expires 1 s from now"):
            store.claim_search(search.id, "orch-b", 30)
        clock.advance(2)  # a's heartbeat lapsed: b takes over
        assert store.claim_search(search.id, "orch-b", 30).owner == "orch-b"
        with pytest.raises(SearchBusyError, match="orch-b"):
            store.heartbeat(search.id, "orch-a", 30)
        assert store.release_search(search.id, "orch-a").owner == "orch-b"  # not a's to release
        assert store.release_search(search.id, "orch-b").owner is None
        with pytest.raises(SearchBusyError, match="released"):
            store.heartbeat(search.id, "orch-b", 30)
        with pytest.raises(NotFoundError):
            store.claim_search(search.id + 100, "orch-a", 30)

    def test_concurrent_claims_have_exactly_one_winner(self, store_url, store, search, clock):
        other = Store(store_url, clock=clock)
        won, busy = [], []

        def claim(s, owner):
            def run():
                try:
                    won.append(s.claim_search(search.id, owner, 60).owner)
                except SearchBusyError:
                    busy.append(owner)
            return run
        try:
            run_threads([claim(store, "o1"), claim(store, "o2"), claim(other, "o3"), claim(other, "o4")])
        finally:
            other.close()
        assert len(won) == 1 and len(busy) == 3
        assert store.get_search(search.id).owner == won[0]

    # -- candidates ----------------------------------------------------------------------------------
    def test_a_config_is_stored_once_per_search(self, store, supernet, search):
        first = store.add_candidates(search.id, [("16_16", 10, 1), ("24_24", 20, 2), ("16_16", 10, 1)])
        assert [c.config for c in first.added] == ["16_16", "24_24"] and first.existing == ()
        assert first.records[0] == first.records[2] and len(first.records) == 3
        second = store.add_candidates(search.id, [("24_24", 20, 2), ("32_32", 30, 3)])
        assert [c.config for c in second.added] == ["32_32"]
        assert [c.id for c in second.existing] == [first.records[1].id] == [second.records[0].id]
        assert store.count_candidates(search.id).total == 3
        other = store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1)
        assert store.add_candidates(other.id, [("16_16", 10, 1)]).added[0].id not in {c.id for c in first.records}

    def test_uniqueness_is_a_database_constraint(self, store, search):
        self.add(store, search, 1)
        row = dict(search_id=search.id, config="16_16", order_index=9, macs=1, params=1, status="queued",
                   metrics={}, attempts=0, queued_at=0.0)
        with pytest.raises(IntegrityError):
            with store.db.write() as conn:
                conn.execute(candidates.insert().values(**row))
        assert store.count_candidates(search.id).total == 1

    def test_candidates_in_proposal_order_with_counts(self, store, search, clock):
        store.add_candidates(search.id, [("a_1", 1, 1, "queued", 5), ("b_1", 2, 1, "queued", 1), ("c_1", 3, 1),
                                         ("d_1", 4, 1, "infeasible", None, "over every budget")])
        store.add_candidates(search.id, [("e_1", 5, 1)])
        listed = store.candidates(search.id)
        assert [(c.config, c.order) for c in listed] == [("b_1", 1), ("a_1", 5), ("c_1", 6), ("d_1", 7), ("e_1", 8)]
        infeasible = store.candidates(search.id, status="infeasible")
        assert [(c.config, c.error, c.finished_at) for c in infeasible] == [("d_1", "over every budget", clock.now)]
        assert all(c.queued_at == clock.now and c.attempts == 0 for c in listed)
        store.lease_candidates(search.id, "w", 1, 60)
        counts = store.count_candidates(search.id)
        assert (counts.queued, counts.leased, counts.infeasible, counts.done, counts.total) == (3, 1, 1, 0, 5)
        assert store.find_candidate(search.id, "c_1") == listed[2] and store.find_candidate(search.id, "z") is None

    def test_candidate_page_filters_sorts_and_pages_in_the_database(self, store, search, clock):
        from nas.store import CandidateQuery

        store.add_candidates(search.id, [(f"{i}_1", macs, 1) for i, macs in enumerate([50, 10, 40, 30, 20])])
        by_config = {c.config: c for c in store.lease_candidates(search.id, "w", 5, 60)}
        for config, fid in (("0_1", 7.5), ("1_1", 12.0), ("2_1", 3.25)):  # 3_1 fails, 4_1 stays leased
            store.complete_candidate(by_config[config].id, "w", {"fid": fid, "teacher-ssim": 1 / fid}, "fid@x", 1.0)
        store.fail_candidate(by_config["3_1"].id, "w", "boom")

        def configs(query=CandidateQuery(), offset=0, limit=None):
            page = store.candidate_page(search.id, query, offset, limit)
            return page.total, [c.config for c in page.records]

        assert configs() == (5, ["0_1", "1_1", "2_1", "3_1", "4_1"])
        assert configs(CandidateQuery(sort="macs"), 1, 2) == (5, ["4_1", "3_1"])
        assert configs(CandidateQuery(sort="metric:fid")) == (5, ["2_1", "0_1", "1_1", "3_1", "4_1"])  # none last
        assert configs(CandidateQuery(sort="metric:fid", descending=True)) == (5, ["1_1", "0_1", "2_1", "3_1", "4_1"])
        # metric names with a hyphen (teacher-ssim, teacher-psnr) are JSON keys that must be quoted in the path
        assert configs(CandidateQuery(sort="metric:teacher-ssim")) == (5, ["1_1", "0_1", "2_1", "3_1", "4_1"])
        assert configs(CandidateQuery(status="done", max_macs=40, sort="macs", descending=True)) == (2, ["2_1", "1_1"])
        assert configs(CandidateQuery(configs=frozenset({"3_1", "0_1", "nope"}))) == (2, ["0_1", "3_1"])
        assert configs(CandidateQuery(configs=frozenset())) == (0, [])
        assert configs(CandidateQuery(), 9, 3) == (5, [])
        for bad, words in ((lambda: CandidateQuery(sort="bogus"), "sort by one of order, macs"),
                           (lambda: CandidateQuery(sort="metric:f id"), "does not name a metric"),
                           (lambda: CandidateQuery(max_macs=-1), "max_macs"),
                           (lambda: CandidateQuery(status="gone"), "candidate status"),
                           (lambda: store.candidate_page(search.id, CandidateQuery(), -1), "offset")):
            with pytest.raises(GanasError, match=words):
                bad()
        with pytest.raises(GanasError, match="no search with id 999"):
            store.candidate_page(999)

    def test_lease_sets_owner_expiry_and_attempt(self, store, search, clock):
        added = self.add(store, search, 3).records
        leased = store.lease_candidates(search.id, "worker-1", 2, 120)
        assert [c.id for c in leased] == [added[0].id, added[1].id]
        for c in leased:
            assert (c.status, c.lease_owner, c.attempts) == (CandidateStatus.LEASED, "worker-1", 1)
            assert (c.leased_at, c.lease_expires_at) == (clock.now, clock.now + 120)
        assert [c.id for c in store.lease_candidates(search.id, "worker-2", 5, 120)] == [added[2].id]
        assert store.lease_candidates(search.id, "worker-2", 5, 120) == ()

    def test_concurrent_leasers_never_get_the_same_candidate(self, store_url, store, search, clock):
        ids = {c.id for c in self.add(store, search, 60).records}
        other = Store(store_url, clock=clock)  # a second process
        got: dict[str, list[int]] = {"a": [], "b": [], "c": []}

        def leaser(s, name):
            def run():
                while leased := s.lease_candidates(search.id, name, 2, 600):
                    got[name].extend(c.id for c in leased)
                    time.sleep(0.005)  # "evaluate": lets the others take the write lock in between
            return run
        try:
            run_threads([leaser(store, "a"), leaser(store, "b"), leaser(other, "c")])
        finally:
            other.close()
        every = got["a"] + got["b"] + got["c"]
        assert sum(1 for mine in got.values() if mine) >= 2  # the leases really interleaved
        assert len(every) == len(set(every)) and set(every) == ids
        owners = {c.id: c.lease_owner for c in store.candidates(search.id, status="leased")}
        assert all(owners[i] == name for name, mine in got.items() for i in mine)
        assert {c.attempts for c in store.candidates(search.id)} == {1}

    def test_only_the_lease_owner_can_complete(self, store, search, clock):
        self.add(store, search, 1)
        (c,) = store.lease_candidates(search.id, "w1", 1, 60)
        with pytest.raises(LeaseError, match="leased to 'w1', not 'w2'"):
            store.complete_candidate(c.id, "w2", {"fid": 1.0}, "fid@v1", 2.0)
        assert store.get_candidate(c.id).status == CandidateStatus.LEASED
        clock.advance(3)
        done = store.complete_candidate(c.id, "w1", {"fid": 61.5, "ssim": 0.5}, "fid@v1", 2.5)
        assert (done.status, dict(done.metrics), done.evaluator) == (CandidateStatus.DONE, {"fid": 61.5, "ssim": 0.5},
                                                                     "fid@v1")
        assert (done.finished_at, done.eval_seconds, done.lease_owner, done.last_owner) == (clock.now, 2.5, None, "w1")
        with pytest.raises(LeaseError, match="is done"):
            store.complete_candidate(c.id, "w1", {"fid": 1.0}, "fid@v1", 2.0)
        with pytest.raises(NotFoundError):
            store.complete_candidate(c.id + 99, "w1", {"fid": 1.0}, "fid@v1", 2.0)

    def test_a_lapsed_lease_not_yet_requeued_can_still_complete(self, store, search, clock):
        self.add(store, search, 1)
        (c,) = store.lease_candidates(search.id, "w1", 1, 10)
        clock.advance(60)
        assert store.complete_candidate(c.id, "w1", {"fid": 3.0}, "e", 1.0).status == CandidateStatus.DONE
        assert store.requeue_expired(search.id) == 0

    def test_expired_leases_are_retried_then_failed_with_the_error(self, store, search, clock):
        self.add(store, search, 1)
        (c,) = store.lease_candidates(search.id, "w1", 1, 10)
        clock.advance(9)
        assert store.requeue_expired(search.id) == 0
        clock.advance(2)
        assert store.requeue_expired(search.id) == 1
        again = store.get_candidate(c.id)
        assert (again.status, again.attempts, again.last_owner, again.lease_owner) == (CandidateStatus.QUEUED, 1, "w1",
                                                                                        None)
        assert "expired" in again.error and "attempt 1 of 2" in again.error
        (second,) = store.lease_candidates(search.id, "w2", 1, 10)
        assert (second.id, second.attempts) == (c.id, 2)
        with pytest.raises(LeaseError, match="leased to 'w2'"):  # w1's late result is refused
            store.complete_candidate(c.id, "w1", {"fid": 1.0}, "e", 1.0)
        with pytest.raises(LeaseError):
            store.fail_candidate(c.id, "w1", "late")
        assert store.requeue_expired(search.id, now=clock.now + 11) == 1
        failed = store.get_candidate(c.id)
        assert failed.status == CandidateStatus.FAILED and "attempt 2 of 2" in failed.error
        assert failed.finished_at == clock.now + 11
        assert store.lease_candidates(search.id, "w3", 1, 10) == ()
        assert store.count_candidates(search.id).failed == 1

    def test_failed_evaluations_retry_up_to_max_attempts(self, store, supernet):
        search = store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1,
                                     max_attempts=3)
        self.add(store, search, 1)
        for attempt in (1, 2, 3):
            (c,) = store.lease_candidates(search.id, "w", 1, 60)
            assert c.attempts == attempt
            after = store.fail_candidate(c.id, "w", f"CUDA out of memory #{attempt}")
            assert after.error == f"CUDA out of memory #{attempt}"
            assert after.status == (CandidateStatus.FAILED if attempt == 3 else CandidateStatus.QUEUED)
        assert store.count_candidates(search.id).failed == 1 and after.finished_at is not None

    def test_a_restarted_worker_gets_its_candidates_back_first(self, store, supernet):
        search = store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1,
                                     max_attempts=3)
        records = self.add(store, search, 5).records
        x = store.lease_candidates(search.id, "x", 2, 60)
        w = store.lease_candidates(search.id, "w", 2, 60)
        assert store.requeue_owner(search.id, "w") == 2 and store.requeue_owner(search.id, "x") == 2
        assert store.requeue_owner(search.id, "nobody") == 0
        back = store.lease_candidates(search.id, "w", 2, 60)
        assert [c.id for c in back] == [c.id for c in w] and all((c.attempts, c.lost) == (1, 1) for c in back)
        rest = store.lease_candidates(search.id, "x", 5, 60)
        assert [c.id for c in rest] == [x[0].id, x[1].id, records[4].id]
        assert "restarted" in store.get_candidate(x[0].id).error
        assert store.requeue_leased(search.id) == 5  # an orchestrator restart: every lease back to the queue
        assert store.count_candidates(search.id).queued == 5
        listed = store.candidates(search.id)  # no restart was counted as an attempt
        assert [(c.attempts, c.lost) for c in listed] == [(0, 2), (0, 2), (0, 2), (0, 2), (0, 1)]
        assert "the orchestrator restarted" in listed[0].error and "not counted as an attempt" in listed[0].error

    def test_lost_leases_cost_no_attempt_and_are_bounded(self, store, supernet, clock):
        """A worker or orchestrator that dies costs a candidate nothing, even with one attempt; a config that
        kills its worker every time is given up after LOST_LEASES_LIMIT lost leases."""
        search = store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1,
                                     max_attempts=1)
        (c,) = self.add(store, search, 1).records
        for lost in range(1, LOST_LEASES_LIMIT + 1):
            (leased,) = store.lease_candidates(search.id, "w", 1, 60)
            assert leased.attempts == 1
            reason = "worker 'w' lost: \x1b[31mActorDiedError\x1b[0m: The actor died"
            assert (store.requeue_owner(search.id, "w", reason) if lost % 2 else store.requeue_leased(search.id)) == 1
            after = store.get_candidate(c.id)
            assert (after.attempts, after.lost) == (0, lost) and "\x1b" not in after.error
            if lost < LOST_LEASES_LIMIT:
                assert after.status == CandidateStatus.QUEUED and after.finished_at is None
        assert after.status == CandidateStatus.FAILED and after.finished_at == clock.now
        assert f"{LOST_LEASES_LIMIT} leases lost" in after.error and "given up" in after.error
        assert store.lease_candidates(search.id, "w", 1, 60) == ()

    def test_leases_handed_back_on_purpose_are_neither_attempts_nor_lost(self, store, supernet):
        """Cancel, pause or SIGTERM hand the running work back: however often, the candidate stays queued."""
        search = store.create_search(supernet.id, budgets=[1], objectives=["fid"], strategy="random", trials=1,
                                     max_attempts=1)
        (c,) = self.add(store, search, 1).records
        for _ in range(LOST_LEASES_LIMIT + 2):
            store.lease_candidates(search.id, "w", 1, 60)
            assert store.requeue_owner(search.id, "w", "w was stopped while running it", lost=False) == 1
        after = store.get_candidate(c.id)
        assert (after.status, after.attempts, after.lost) == (CandidateStatus.QUEUED, 0, 0)
        assert "handed back; not counted as an attempt" in after.error

    def test_stored_errors_have_no_terminal_escapes(self, store, search, clock):
        self.add(store, search, 1)
        (c,) = store.lease_candidates(search.id, "w", 1, 60)
        coloured = "\x1b[36mray::RayWorker.run()\x1b[39m\x1b[22m\n  File \"x.py\"\x07 DatasetError: bad image"
        assert store.fail_candidate(c.id, "w", coloured).error == 'ray::RayWorker.run()\n  File "x.py" DatasetError: ' \
                                                                  "bad image"
        failed = store.set_search_state(search.id, "failed", error="\x1b[1mWorkerStartError\x1b[0m: no")
        assert failed.error == "WorkerStartError: no"

    # -- records -----------------------------------------------------------------------------------
    def test_records_are_immutable_values(self, store, supernet, search):
        self.add(store, search, 1)
        (c,) = store.lease_candidates(search.id, "w", 1, 60)
        done = store.complete_candidate(c.id, "w", {"fid": 50.0}, "e", 1.0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            done.status = CandidateStatus.QUEUED
        with pytest.raises(TypeError):
            done.metrics["fid"] = 0.0
        with pytest.raises(TypeError):
            supernet.dataset["split"]["val"] = 1
        with pytest.raises(TypeError):
            search.strategy_settings.update(x=1)
        assert isinstance(done.metrics, FrozenDict) and not hasattr(done, "_sa_instance_state")
        assert pickle.loads(pickle.dumps(done)) == done and hash(search) == hash(store.get_search(search.id))
        assert json.loads(json.dumps(done.to_dict()))["metrics"] == {"fid": 50.0}
        assert json.loads(json.dumps(search.to_dict()))["objectives"] == [{"metric": "fid", "direction": "minimize"}]
        hparams = {"ngf": 32}
        net = store.register_supernet("n2", architecture="resnet", space="s", checkpoint="c", checkpoint_sha256=SHA,
                                      hparams=hparams)
        hparams["ngf"] = 1  # the caller's dict is not shared with the store
        assert net.hparams["ngf"] == 32 == store.get_supernet("n2").hparams["ngf"]

    def test_bad_input_raises_typed_errors(self, store, supernet, search):
        self.add(store, search, 1)
        (c,) = store.lease_candidates(search.id, "w", 1, 60)
        cases = [
            (lambda: store.register_supernet("x", architecture="r", space="s", checkpoint="c", checkpoint_sha256="ab"),
             "64 hex digits"),
            (lambda: store.create_search("nope", budgets=[1], objectives=["fid"], strategy="r", trials=1),
             "registered: horse2zebra"),
            (lambda: store.create_search(supernet.id, budgets=[0], objectives=["fid"], strategy="r", trials=1),
             "budget must be an integer >= 1"),
            (lambda: store.create_search(supernet.id, budgets=[1], objectives=["fid:up"], strategy="r", trials=1),
             "minimize, maximize"),
            (lambda: store.create_search(supernet.id, budgets=[1], objectives=[], strategy="r", trials=1),
             "at least one objective"),
            (lambda: store.add_candidates(search.id, [("1_1", 1, 1, "done", 0)]), "allowed: queued, infeasible"),
            (lambda: store.add_candidates(search.id, [("1 1", 1, 1)]), "without spaces"),
            (lambda: store.add_candidates(search.id, [("1_1", -1, 1)]), "MACs of 1_1"),
            (lambda: store.complete_candidate(c.id, "w", {"fid": math.nan}, "e", 1.0), "not a finite number"),
            (lambda: store.lease_candidates(search.id, "w", 1, 0), "ttl_seconds"),
            (lambda: store.candidates(search.id, status="busy"), "queued, leased, done, failed, infeasible"),
            (lambda: store.get_search(search.id + 100), "no search with id"),
        ]
        for call, message in cases:
            with pytest.raises(GanasError, match=message) as info:
                call()
            assert info.value.exit_code == 2
        assert store.get_candidate(c.id).status == CandidateStatus.LEASED

    def test_data_survives_reopening(self, store_url, store, search, clock):
        self.add(store, search, 2)
        (c,) = store.lease_candidates(search.id, "w", 1, 60)
        store.complete_candidate(c.id, "w", {"fid": 3.0}, "e", 1.0)
        store.close()
        with Store(store_url, clock=clock) as reopened:
            assert [x.status for x in reopened.candidates(search.id)] == [CandidateStatus.DONE, CandidateStatus.QUEUED]
            assert reopened.get_search(search.id) == search


def _back_to_version_3(conn) -> None:
    """Undo version 4 (the lost-lease counts) on an open connection."""
    for name in ("ganas_candidates", "ganas_finals"):
        conn.execute(text(f"ALTER TABLE {name} DROP COLUMN lost"))


def _back_to_version_2(conn) -> None:
    """Undo version 3 (teacher columns, the finals table) on an open connection."""
    conn.execute(text("DROP TABLE ganas_finals"))
    conn.execute(text("ALTER TABLE ganas_searches DROP COLUMN teacher"))
    conn.execute(text("ALTER TABLE ganas_supernets DROP COLUMN teacher"))
