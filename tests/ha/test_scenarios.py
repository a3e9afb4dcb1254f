"""Failure scenarios on a real cluster under a steady load of POSTs: no acknowledged stamp is lost or doubled.

`make test` runs the first scenario with a small load; `make test-ha` (PUNCHCLOCK_HA_FULL=1) runs them all.
Each scenario starts from a healthy cluster and records its figures (see docs/ha.md).
"""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from punchclock_tools.cluster import etcd, patroni, supervisor, walfs
from punchclock_tools.cluster.faults import Cluster, wait_until
from punchclock_tools.cluster.render import FAILOVER_BUDGET_SECONDS, LOOP_WAIT, RETRY_TIMEOUT, TTL
from punchclock_tools.load import Failure, Load, verify
from tests.ha.conftest import FULL, check_promise, record

pytestmark = [pytest.mark.ha, pytest.mark.slow]
full_only = pytest.mark.skipif(not FULL, reason="make test-ha runs the full set (PUNCHCLOCK_HA_FULL=1)")

# The quick form keeps `make test` short; the full form holds the load longer and a little harder.
WORKERS, RATE = (16, 150.0) if FULL else (6, 40.0)
AFTER_EVENT = 5.0 if FULL else 2.0


def test_killed_leader_fails_over_and_rejoins(settled: Cluster, report: dict[str, object]) -> None:
    """A SIGKILLed leader (Patroni and PostgreSQL) is replaced by its synchronous standby; no stamp is lost."""
    # Given a healthy cluster under load
    cluster = settled
    old = cluster.wait_leader()
    load = Load(cluster.url, workers=WORKERS, rate=RATE)
    with cluster.sync_watch() as watch, cluster.ready_watch() as ready, load.running():
        load.wait_acknowledged(30)
        # When the leader's Patroni and its whole PostgreSQL are SIGKILLed
        load.mark_event()
        killed_at = time.monotonic()
        cluster.kill_node(old)
        new = cluster.wait_leader(other_than=old, timeout=60)
        failover = time.monotonic() - killed_at
        load.wait_acknowledged(30, timeout=60)
        time.sleep(AFTER_EVENT)
    # Then every acknowledged stamp is on the new leader, once
    verdict = verify(load.outcome, cluster.leader_dsn())
    # And every instance's own /readyz answered 200 within the probe's timeout throughout, requests held meanwhile
    held = load.outcome.held_then_acknowledged(killed_at)
    # And the old node, restarted, rejoins as a replica of the new leader
    restarted = time.monotonic()
    cluster.start(old)
    wait_until(lambda: cluster.node_is_replica(old), 120, f"{old} to rejoin")
    rejoin = time.monotonic() - restarted
    record(
        report,
        verdict,
        load.outcome,
        old_leader=old,
        new_leader=new,
        failover_seconds=round(failover, 2),
        rejoin_seconds=round(rejoin, 1),
        held_then_acknowledged=held,
        readyz_probes=sum(ready.probes.values()),
        readyz_not_ready=len(ready.not_ready),
        readyz_slowest_ms=max(ready.slowest_ms.values(), default=0),
    )
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert held > 0
    assert len(ready.probes) == len(cluster.layout.apps)
    assert min(ready.probes.values()) > 0
    assert ready.not_ready == [], ready.not_ready[:10]
    assert cluster.leader() == new
    assert all(f.status == 503 and f.retry_after for f in load.outcome.failures), load.outcome.failures[:5]
    check_promise(report, cluster, watch, load.outcome)


def test_patroni_runs_strict_with_the_rendered_timing(settled: Cluster) -> None:
    """The pinned Patroni 4.x runs with ttl 20, strictly synchronous and failsafe (docs/ha.md)."""
    # Given the running cluster, when its leader reports the configuration in force and its version
    leader = settled.layout.node(settled.wait_leader())
    status, config = patroni.get(leader.rest_port, "/config")
    _, health = patroni.get(leader.rest_port, "/patroni")
    # Then it is the one deploy/cluster rendered
    assert status == 200
    assert (config["ttl"], config["loop_wait"], config["retry_timeout"]) == (TTL, LOOP_WAIT, RETRY_TIMEOUT)
    assert (config["synchronous_mode"], config["synchronous_mode_strict"], config["failsafe_mode"]) == (True,) * 3
    assert health["patroni"]["version"] == patroni.VERSION


def test_the_leader_archives_wal_with_pgbackrest(settled: Cluster) -> None:
    """Whichever node leads (a new one after scenario 1) pushes its WAL to the pgBackRest repository."""
    # Given the current leader, when pgBackRest checks the stanza (it switches WAL and waits for the archive)
    leader = settled.wait_leader()
    result = settled.pgbackrest("check")
    # Then the segment arrived in the repository
    assert result.returncode == 0, result.stdout + result.stderr
    assert leader == settled.leader()


@full_only
def test_planned_switchover_fails_no_request(settled: Cluster, report: dict[str, object]) -> None:
    """A planned `patronictl switchover` to the synchronous standby answers every POST."""
    # Given a healthy cluster under load
    cluster = settled
    old = cluster.wait_leader()
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When the operator switches the leader over
        load.mark_event()
        started = time.monotonic()
        cluster.switchover(old)
        new = cluster.wait_leader(other_than=old, timeout=60)
        switched = time.monotonic() - started
        load.wait_acknowledged(50, timeout=60)
        time.sleep(AFTER_EVENT)
    # Then nothing is lost, doubled or failed
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(report, verdict, load.outcome, old_leader=old, new_leader=new, switchover_seconds=round(switched, 2))
    assert (verdict.lost, verdict.duplicates, verdict.failed) == (0, 0, 0)
    check_promise(report, cluster, watch, load.outcome)


@full_only
def test_killed_instance_is_routed_around(settled: Cluster, report: dict[str, object]) -> None:
    """With one punchclock instance SIGKILLed, the balancer sends everything to the other one."""
    # Given two instances under load
    cluster = settled
    victim = cluster.layout.apps[0].name
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When one instance is SIGKILLed (supervisord restarts it)
        load.mark_event()
        pid = cluster.pid(victim)
        assert pid
        in_flight = cluster.in_flight(victim)
        cluster.kill_pid(pid)
        load.wait_acknowledged(100, timeout=30)
        cluster.wait_app_in_balancer(victim, 60)
        time.sleep(AFTER_EVENT)
    # Then at most the requests in flight on it failed, and nothing acknowledged is lost
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(report, verdict, load.outcome, killed=victim, in_flight_at_kill=in_flight, clients=WORKERS)
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert verdict.failed <= WORKERS
    check_promise(report, cluster, watch, load.outcome)


@full_only
def test_rolling_restart_fails_no_request(settled: Cluster, report: dict[str, object]) -> None:
    """Restarting every instance in turn with SIGTERM (drain first) answers every POST."""
    # Given two instances under load
    cluster = settled
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When each instance in turn gets SIGTERM, drains, and is started again
        load.mark_event()
        for app in cluster.layout.apps:
            cluster.ctl("restart", supervisor.program(cluster.layout, app.name))
            cluster.wait_app_in_balancer(app.name, 60)
            load.wait_acknowledged(30)
        time.sleep(AFTER_EVENT)
    # Then no request failed and nothing is lost or doubled
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(report, verdict, load.outcome, restarted=[app.name for app in cluster.layout.apps])
    assert (verdict.lost, verdict.duplicates, verdict.failed) == (0, 0, 0)
    check_promise(report, cluster, watch, load.outcome)


@full_only
def test_writes_continue_without_etcd(settled: Cluster, report: dict[str, object]) -> None:
    """Losing one etcd member, then all of them, does not stop writes (failsafe mode); they rejoin after."""
    # Given a healthy cluster under load
    cluster = settled
    leader = cluster.wait_leader()
    names = [e.name for e in cluster.layout.etcd]
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When one etcd member stops
        load.mark_event()
        cluster.stop(names[0])
        one_down = time.monotonic()
        time.sleep(5)
        failed_one_down = load.outcome.failed_between(one_down, time.monotonic())
        # And then every etcd member is down for longer than the leader key's ttl
        cluster.stop(*names[1:])
        all_down = time.monotonic()
        before = load.outcome.acknowledged
        time.sleep(20)
        during = load.outcome.acknowledged - before
        failed_during = load.outcome.failed_between(all_down, time.monotonic())
        # Then writes went on; and once etcd is back the cluster is normal again
        cluster.start(*names)
        cluster.settle()
        load.wait_acknowledged(50)
        time.sleep(AFTER_EVENT)
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(
        report,
        verdict,
        load.outcome,
        failed_with_one_etcd_down=failed_one_down,
        acknowledged_with_etcd_down=during,
        failed_with_etcd_down=failed_during,
        leader_before=leader,
        leader_after=cluster.leader(),
    )
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert during > 0
    assert (failed_one_down, failed_during) == (0, 0)
    check_promise(report, cluster, watch, load.outcome)


@full_only
def test_database_down_answers_503_then_recovers(settled: Cluster, report: dict[str, object]) -> None:
    """With every database node stopped POSTs get a quick 503 with Retry-After; the service recovers by itself."""
    # Given a healthy cluster
    cluster = settled
    app_pids = {app.name: cluster.pid(app.name) for app in cluster.layout.apps}
    # When every database node is stopped
    cluster.stop(*(node.name for node in cluster.layout.nodes))
    wait_until(lambda: cluster.readyz() == 503, 60, "/readyz to turn 503")
    # Then every POST answers 503 with Retry-After, none later than the failover budget;
    # and once the outage has outlasted the budget, at once
    answers = []
    outage_started = time.monotonic()
    while time.monotonic() - outage_started < 2 * FAILOVER_BUDGET_SECONDS + 10:  # each instance outlasts it
        started = time.monotonic()
        response = httpx.post(f"{cluster.url}/app", timeout=60)
        answers.append(
            (round(time.monotonic() - started, 3), response.status_code, response.headers.get("retry-after"))
        )
        time.sleep(0.2)
    assert {status for _, status, _ in answers} == {503}
    assert all(retry_after for _, _, retry_after in answers)
    assert max(seconds for seconds, _, _ in answers) < FAILOVER_BUDGET_SECONDS + 3
    # When the nodes come back
    restarted = time.monotonic()
    cluster.start(*(node.name for node in cluster.layout.nodes))
    wait_until(lambda: cluster.readyz() == 200, 120, "/readyz to turn 200")
    recovered = time.monotonic() - restarted
    # Then POST works again, served by the same processes
    ready_at = time.monotonic()
    refused = []
    while (response := httpx.post(f"{cluster.url}/app", timeout=30)).status_code != 201:
        refused.append(f"{response.status_code} {response.text[:160]}")
        assert time.monotonic() - ready_at < 30, refused
        time.sleep(0.2)
    post_after_ready = time.monotonic() - ready_at
    assert {app.name: cluster.pid(app.name) for app in cluster.layout.apps} == app_pids
    late = [seconds for seconds, _, _ in answers[1:]]
    report.update(
        posts_during_outage=len(answers),
        first_answer_seconds=answers[0][0],
        answers_within_1s=sum(1 for seconds in late if seconds < 1),
        slowest_answers_seconds=sorted(late)[-2:],
        retry_after=answers[-1][2],
        recovered_seconds=round(recovered, 1),
        first_201_after_ready_seconds=round(post_after_ready, 2),
        refused_after_ready=refused[:3],
    )


@full_only
def test_partitioned_leader_loses_no_acknowledged_stamp(settled: Cluster, report: dict[str, object]) -> None:
    """A leader cut off from etcd and its peers (not from HAProxy) demotes; nothing it acknowledged is lost."""
    # Given a healthy cluster under load
    cluster = settled
    old = cluster.wait_leader()
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When the leader is partitioned from etcd and the other nodes
        load.mark_event()
        cluster.partition(old)
        try:
            leadership = cluster.watch_leadership(old, timeout=90)
            load.wait_acknowledged(50, timeout=60)
        finally:
            cluster.heal()
        time.sleep(AFTER_EVENT)
    # Then every stamp acknowledged by either side is on the new leader, once
    verdict = verify(load.outcome, cluster.leader_dsn())
    rejoin = wait_until(lambda: cluster.node_is_replica(old), 120, f"{old} to rejoin")
    record(report, verdict, load.outcome, old_leader=old, **leadership, rejoin_seconds=round(rejoin, 1))
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert leadership["both_primary_seconds"] == 0
    check_promise(report, cluster, watch, load.outcome)


FREEZE_SECONDS = TTL + 10  # Patroni frozen ttl + 7 s (after a 3 s stagger): another node is promoted meanwhile
STAGGER_SECONDS = LOOP_WAIT + 1  # PostgreSQL frozen first, Patroni this much later (mid-cycle, see freeze_node)
RESUME_WATCH_SECONDS = 15  # how long every node's /primary is watched after a resume


def rejoin_seconds(cluster: Cluster, name: str, timeout: float = 120) -> float:
    """How long until ``name`` runs as a replica again (-1 when it did not within ``timeout``)."""
    with contextlib.suppress(TimeoutError):
        return wait_until(lambda: cluster.node_is_replica(name), timeout, f"{name} to rejoin")
    return -1.0


@full_only
@pytest.mark.parametrize("replicas_down", [0, 1], ids=["all-up", "one-replica-down"])
def test_frozen_leader_does_not_take_the_lock_back(
    settled: Cluster, report: dict[str, object], replicas_down: int
) -> None:
    """A leader frozen (SIGSTOP of PostgreSQL, then of Patroni mid-cycle) past the ttl and then resumed leaves the
    key to the node promoted meanwhile: one primary, and nothing either leader acknowledged is lost."""
    # Given a cluster under load (optionally with its non-synchronous replica down)
    cluster = settled
    old = cluster.wait_leader()
    down = [m["name"] for m in patroni.members(cluster.layout) if m.get("role") == "replica"][:replicas_down]
    if down:
        cluster.kill_node(down[0])
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When the leader's Patroni, postmaster and every backend are frozen for longer than the ttl
        load.mark_event()
        frozen_at = time.monotonic()
        frozen = cluster.freeze_node(old, stagger=STAGGER_SECONDS)
        try:
            new = cluster.wait_leader(other_than=old, timeout=FREEZE_SECONDS + 30)
            elected = time.monotonic() - frozen_at
            time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
            acked_by_new_leader = sum(1 for r in load.outcome.receipts if r.acked_at > frozen_at + elected)
        finally:
            # And then resumed
            cluster.thaw(frozen)
        after_resume = cluster.primaries_for(RESUME_WATCH_SECONDS)
        if down:
            cluster.start(down[0])
        # (a cluster broken by a key taken back, as with Patroni 3.0.2, is measured rather than waited on)
        with contextlib.suppress(TimeoutError):
            load.wait_acknowledged(50, timeout=90)
        time.sleep(AFTER_EVENT)
    # Then the node promoted during the freeze still leads, and every acknowledged stamp is on every node
    verdict = verify(load.outcome, cluster.leader_dsn())
    rejoin = rejoin_seconds(cluster, old)
    record(
        report,
        verdict,
        load.outcome,
        old_leader=old,
        new_leader=new,
        replica_down=down,
        leader_after=cluster.leader(),
        new_elected_seconds=round(elected, 2),
        frozen_seconds=FREEZE_SECONDS,
        acked_by_new_leader_during_freeze=acked_by_new_leader,
        both_primary_seconds_after_resume=after_resume["both_primary_seconds"],
        primary_after_resume=after_resume["primaries_seen"],
        rejoin_seconds=round(rejoin, 1),
    )
    check_promise(report, cluster, watch, load.outcome)
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert cluster.leader() == new
    assert after_resume["both_primary_seconds"] == 0


SECOND_KILL_SECONDS = 2  # the new leader is killed this long after it is promoted
BACK_AFTER_SECONDS = 5  # both killed nodes come back this long after the second kill


@full_only
def test_new_leader_killed_right_after_promotion(settled: Cluster, report: dict[str, object]) -> None:
    """The leader is SIGKILLed, then the node promoted in its place 2 s after its promotion (before or just after
    it named a synchronous standby); both come back 5 s later. Nothing either acknowledged is lost."""
    # Given a healthy cluster under load
    cluster = settled
    first = cluster.wait_leader()
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When the leader is killed, and its successor 2 s after it is promoted
        load.mark_event()
        killed_at = time.monotonic()
        cluster.kill_node(first)
        second = cluster.wait_leader(other_than=first, timeout=90)
        promoted = time.monotonic() - killed_at
        time.sleep(SECOND_KILL_SECONDS)
        sync_at_kill = [m["name"] for m in patroni.members(cluster.layout) if m.get("role") == "sync_standby"]
        acked_by_second = sum(1 for r in load.outcome.receipts if r.acked_at > killed_at)
        cluster.kill_node(second)
        second_killed_at = time.monotonic()
        # And both machines come back 5 s later
        time.sleep(BACK_AFTER_SECONDS)
        cluster.start(first, second)
        third = cluster.wait_leader(timeout=120)
        wait_until(lambda: load.outcome.receipts[-1].acked_at > second_killed_at, 120, "writes to resume")
        writes_back = load.outcome.first_ack_after(second_killed_at) or -1.0
        load.wait_acknowledged(50, timeout=90)
        time.sleep(AFTER_EVENT)
    # Then every acknowledged stamp is on every node, and the cluster is whole again
    cluster.settle()
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(
        report,
        verdict,
        load.outcome,
        first_leader=first,
        second_leader=second,
        promoted_seconds=round(promoted, 2),
        sync_standby_when_killed=sync_at_kill,
        acked_by_second_leader=acked_by_second,
        leader_after=third,
        writes_back_after_second_kill_seconds=round(writes_back, 1),
    )
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert all(f.status == 503 and f.retry_after for f in load.outcome.failures), load.outcome.failures[:5]
    check_promise(report, cluster, watch, load.outcome)


NO_STANDBY_SECONDS = FAILOVER_BUDGET_SECONDS + 5  # both replicas stay down past the failover budget


@full_only
def test_no_standby_left_holds_writes_then_503(settled: Cluster, report: dict[str, object]) -> None:
    """With both replicas down, strict synchronous mode acknowledges nothing: POSTs are held, then 503 with
    Retry-After; once the replicas are back, writes resume and nothing acknowledged is lost."""
    # Given a healthy cluster under load
    cluster = settled
    leader = cluster.wait_leader()
    replicas = [node.name for node in cluster.layout.nodes if node.name != leader]
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When both replicas are SIGKILLed and stay down past the failover budget
        load.mark_event()
        cluster.kill_node(replicas[0])
        cluster.kill_node(replicas[1])
        down_at = time.monotonic()
        time.sleep(NO_STANDBY_SECONDS)
        back_at = time.monotonic()
        # And come back
        cluster.start(*replicas)
        wait_until(lambda: load.outcome.receipts[-1].acked_at > back_at, 120, "writes to resume")
        writes_back = load.outcome.first_ack_after(back_at) or -1.0
        load.wait_acknowledged(50, timeout=60)
        time.sleep(AFTER_EVENT)
    # Then no 201 went out while no standby was up (1 s grace for commits confirmed just before the kill)
    acked_alone = sum(1 for r in load.outcome.receipts if down_at + 1 < r.acked_at < back_at)
    failed_alone = load.outcome.failed_between(down_at, back_at + writes_back)
    cluster.settle()
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(
        report,
        verdict,
        load.outcome,
        leader=leader,
        replicas_down=replicas,
        down_seconds=round(back_at - down_at, 1),
        acked_with_no_standby=acked_alone,
        failed_with_no_standby=failed_alone,
        writes_back_after_restart_seconds=round(writes_back, 1),
        leader_after=cluster.leader(),
    )
    assert acked_alone == 0
    assert failed_alone > 0
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert all(f.status == 503 and f.retry_after for f in load.outcome.failures), load.outcome.failures[:5]
    check_promise(report, cluster, watch, load.outcome)


def only_503_with_retry_after(failures: list[Failure]) -> bool:
    """Every failed POST was a 503 that says when to retry (with its key: the original receipt or one stamp)."""
    return all(f.status == 503 and f.retry_after for f in failures)


SYNC_FREEZE_SECONDS = 30


@full_only
def test_frozen_sync_standby_is_replaced(settled: Cluster, report: dict[str, object]) -> None:
    """The synchronous standby's PostgreSQL frozen (SIGSTOP of its postmaster and children) for 30 s: the leader
    drops it after wal_sender_timeout, Patroni names the other replica, writes resume without a failover;
    resumed, it streams again. Nothing acknowledged is lost, no 201 without a synchronous standby."""
    # Given a healthy cluster under load
    cluster = settled
    leader = cluster.wait_leader()
    sync = cluster.sync_standby()
    assert sync is not None
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When the synchronous standby's PostgreSQL is frozen
        load.mark_event()
        frozen_at = time.monotonic()
        frozen = cluster.freeze_postgres(sync)
        try:
            swapped = wait_until(lambda: cluster.sync_standby() not in (None, sync), 60, "another sync standby")
            replacement = cluster.sync_standby()
            load.wait_acknowledged(50, timeout=60)
            acked_while_frozen = load.outcome.acknowledged_between(frozen_at, time.monotonic())
            time.sleep(max(0.0, SYNC_FREEZE_SECONDS - (time.monotonic() - frozen_at)))
            acked_while_frozen = load.outcome.acknowledged_between(frozen_at, time.monotonic())
        finally:
            # And then resumed
            cluster.thaw(frozen)
        resumed_at = time.monotonic()
        streams_again = wait_until(lambda: cluster.node_is_replica(sync), 120, f"{sync} to stream again")
        load.wait_acknowledged(50, timeout=60)
        time.sleep(AFTER_EVENT)
    # Then the leader never changed, writes went on through the other replica, and nothing is lost anywhere
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(
        report,
        verdict,
        load.outcome,
        leader=leader,
        frozen_standby=sync,
        replacement_sync_standby=replacement,
        sync_replaced_seconds=round(swapped, 2),
        frozen_seconds=round(resumed_at - frozen_at, 1),
        acked_while_frozen=acked_while_frozen,
        streams_again_seconds=round(streams_again, 1),
        leader_after=cluster.leader(),
    )
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert cluster.leader() == leader
    assert replacement not in (None, sync)
    assert acked_while_frozen > 0
    assert only_503_with_retry_after(load.outcome.failures), load.outcome.failures[:5]
    check_promise(report, cluster, watch, load.outcome)


@full_only
def test_frozen_patroni_alone_hands_over(settled: Cluster, report: dict[str, object]) -> None:
    """Only the leader's Patroni frozen (SIGSTOP) past the ttl while its PostgreSQL runs on as a primary: the
    synchronous standby is promoted once the key expires; the old primary can acknowledge nothing meanwhile
    (its standby left it), and resumed, its Patroni finds the key taken and rejoins as a replica."""
    # Given a healthy cluster under load
    cluster = settled
    old = cluster.wait_leader()
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When the leader's Patroni alone is frozen for longer than the ttl
        load.mark_event()
        frozen_at = time.monotonic()
        frozen = cluster.freeze_patroni(old)
        try:
            new = cluster.wait_leader(other_than=old, timeout=FREEZE_SECONDS + 30)
            elected = time.monotonic() - frozen_at
            time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
            acked_by_new_leader = sum(1 for r in load.outcome.receipts if r.acked_at > frozen_at + elected)
        finally:
            # And then resumed
            cluster.thaw(frozen)
        after_resume = cluster.primaries_for(RESUME_WATCH_SECONDS, old=old)
        with contextlib.suppress(TimeoutError):
            load.wait_acknowledged(50, timeout=90)
        time.sleep(AFTER_EVENT)
    # Then the promoted node still leads, the old one rejoined, and every acknowledged stamp is on every node
    verdict = verify(load.outcome, cluster.leader_dsn())
    rejoin = rejoin_seconds(cluster, old)
    record(
        report,
        verdict,
        load.outcome,
        old_leader=old,
        new_leader=new,
        leader_after=cluster.leader(),
        new_elected_seconds=round(elected, 2),
        frozen_seconds=FREEZE_SECONDS,
        acked_by_new_leader_during_freeze=acked_by_new_leader,
        both_primary_seconds_after_resume=after_resume["both_primary_seconds"],
        old_primary_after_resume_seconds=after_resume["old_primary_until"],
        rejoin_seconds=round(rejoin, 1),
    )
    check_promise(report, cluster, watch, load.outcome)
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert cluster.leader() == new
    assert rejoin >= 0
    assert only_503_with_retry_after(load.outcome.failures), load.outcome.failures[:5]


WAL_FULL_SECONDS = 30  # the leader's WAL filesystem stays full this long after the first sign of it
WAL_SIGN_SECONDS = 5  # the first sign: no acknowledgement for this long (or another leader)
SEGMENT_SWITCH_SECONDS = 0.2  # pg_switch_wal() this often while it is full: WAL keeps coming


@full_only
def test_leader_wal_disk_full(settled: Cluster, report: dict[str, object]) -> None:
    """The leader's pg_wal filesystem full (a small tmpfs of its own, filled by another file) under load: its
    PostgreSQL PANICs and Patroni fails over to the synchronous standby; nothing is acknowledged without one,
    nothing acknowledged is lost, and once space is freed the old leader rejoins by itself."""
    cluster = settled
    first = cluster.wait_leader()
    moved: list[str] = []
    try:
        # Given both replicas' pg_wal on a small filesystem of its own, and a switchover onto one of them
        for name in [node.name for node in cluster.layout.nodes if node.name != first]:
            cluster.stop(name)
            walfs.move_onto_small_fs(cluster.layout, name)
            moved.append(name)
            cluster.start(name)
            cluster.settle()
        cluster.switchover(first)
        leader = cluster.wait_leader(other_than=first, timeout=60)
        cluster.settle()
        assert leader in moved
        stop_switching = threading.Event()
        switcher = threading.Thread(
            target=walfs.switch_segments,
            args=(cluster.node_dsn(leader, "postgres"), stop_switching, SEGMENT_SWITCH_SECONDS),
            daemon=True,
        )
        with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
            load.wait_acknowledged(50)
            # When its WAL filesystem is filled, and WAL keeps coming (stamps, plus a segment switch every 0.2 s)
            load.mark_event()
            full_at = time.monotonic()
            filler = walfs.fill(cluster.layout, leader)
            switcher.start()
            try:
                # (the first sign: no acknowledgement for 5 s, or another leader)
                wait_until(
                    lambda: (
                        time.monotonic() - max(r.acked_at for r in load.outcome.receipts) > WAL_SIGN_SECONDS
                        or cluster.leader() not in (leader, None)
                    ),
                    90,
                    "writes to stop or the leader to change",
                )
                felt = time.monotonic() - full_at
                time.sleep(WAL_FULL_SECONDS)
                leader_while_full = cluster.leader()
                acked_while_full = load.outcome.acknowledged_between(full_at, time.monotonic())
            finally:
                # And then space is freed
                stop_switching.set()
                walfs.free(cluster.layout, leader)
            freed_at = time.monotonic()
            wait_until(lambda: load.outcome.receipts[-1].acked_at > freed_at, 120, "writes to resume")
            writes_back = load.outcome.first_ack_after(freed_at) or -1.0
            load.wait_acknowledged(50, timeout=60)
            time.sleep(AFTER_EVENT)
        switcher.join(10)
        cluster.settle()
        verdict = verify(load.outcome, cluster.leader_dsn())
        record(
            report,
            verdict,
            load.outcome,
            leader=leader,
            wal_filesystem="tmpfs",
            filler_mb=round(filler / 2**20, 1),
            first_sign_seconds=round(felt, 1),
            full_seconds=round(freed_at - full_at, 1),
            leader_while_full=leader_while_full,
            acked_while_full=acked_while_full,
            writes_back_after_freeing_seconds=round(writes_back, 1),
            leader_after=cluster.leader(),
        )
        assert (verdict.lost, verdict.duplicates) == (0, 0)
        # PostgreSQL PANICs on ENOSPC; with primary_start_timeout 0 Patroni hands over instead of restarting it
        assert leader_while_full not in (leader, None)
        assert only_503_with_retry_after(load.outcome.failures), load.outcome.failures[:5]
        check_promise(report, cluster, watch, load.outcome)
    finally:
        # Finally every node's pg_wal is back in its data directory and the small filesystems are gone
        for name in moved:
            cluster.stop(name)
            walfs.move_back(cluster.layout, name)
            cluster.start(name)
            cluster.settle()


@full_only
def test_haproxy_restarted_under_load(settled: Cluster, report: dict[str, object]) -> None:
    """HAProxy (both the public endpoint and the database router) restarted under load: the POSTs it had open or
    refused fail on the client's side, every one of them safe to retry with its key; nothing acknowledged is lost
    and no 201 goes out without a synchronous standby."""
    # Given a healthy cluster under load
    cluster = settled
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When HAProxy is restarted (SIGTERM, then started again by supervisord)
        load.mark_event()
        restarted_at = time.monotonic()
        refused = cluster.refused_during(cluster.layout.haproxy["http_port"], lambda: cluster.ctl("restart", "haproxy"))
        restart = time.monotonic() - restarted_at
        back = wait_until(lambda: cluster.readyz() == 200, 60, "the balancer to answer /readyz")
        writes_back = load.outcome.first_ack_after(restarted_at) or -1.0
        load.wait_acknowledged(50, timeout=60)
        time.sleep(AFTER_EVENT)
    # Then nothing acknowledged is lost; what failed never reached the balancer again or was a 503 to retry
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(
        report,
        verdict,
        load.outcome,
        restart_seconds=round(restart, 2),
        refused_seconds=round(refused, 3),
        ready_again_seconds=round(restart + back, 2),
        first_ack_after_restart_seconds=round(writes_back, 2),
    )
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert all(f.status is None or (f.status == 503 and f.retry_after) for f in load.outcome.failures), [
        f for f in load.outcome.failures if f.status is not None
    ][:5]
    check_promise(report, cluster, watch, load.outcome)


ETCD_CUT_SECONDS = TTL + 15


@full_only
def test_leader_cut_from_etcd_alone(settled: Cluster, report: dict[str, object]) -> None:
    """The leader's node cut off from every etcd member and from nothing else (replication and the REST APIs of
    its peers still flow) for longer than the ttl: failsafe mode keeps it leading and writing, never two
    primaries, nothing acknowledged lost."""
    # Given a healthy cluster under load
    cluster = settled
    old = cluster.wait_leader()
    with cluster.sync_watch() as watch, Load(cluster.url, workers=WORKERS, rate=RATE).running() as load:
        load.wait_acknowledged(50)
        # When nftables drops the leader's traffic to etcd, and only that, for ttl + 15 s
        load.mark_event()
        cut_at = time.monotonic()
        cluster.partition_from_etcd(old)
        try:
            during = cluster.primaries_for(ETCD_CUT_SECONDS, old=old)
            healed_at = time.monotonic()
            acked_during = load.outcome.acknowledged_between(cut_at, healed_at)
            failed_during = load.outcome.failed_between(cut_at, healed_at)
            leader_during = cluster.leader()
        finally:
            cluster.heal()
        cluster.settle()
        load.wait_acknowledged(50, timeout=60)
        time.sleep(AFTER_EVENT)
    # Then one primary at a time, and every acknowledged stamp on every node
    verdict = verify(load.outcome, cluster.leader_dsn())
    record(
        report,
        verdict,
        load.outcome,
        old_leader=old,
        cut_seconds=round(healed_at - cut_at, 1),
        both_primary_seconds=during["both_primary_seconds"],
        primaries_seen=during["primaries_seen"],
        old_primary_until_seconds=during["old_primary_until"],
        leader_at_heal=leader_during,
        acked_during_cut=acked_during,
        failed_during_cut=failed_during,
        leader_after=cluster.leader(),
    )
    assert (verdict.lost, verdict.duplicates) == (0, 0)
    assert during["both_primary_seconds"] == 0
    # failsafe mode: every member answers the leader's POST /failsafe, so it keeps its role and writes go on
    assert leader_during == old
    assert acked_during > 0
    assert only_503_with_retry_after(load.outcome.failures), load.outcome.failures[:5]
    check_promise(report, cluster, watch, load.outcome)


@full_only
def test_etcd_member_rejoins_after_losing_its_data(settled: Cluster) -> None:
    """An etcd member whose data directory is lost rejoins the cluster that exists (removed, re-added, started
    with --initial-cluster-state existing) rather than bootstrapping one of its own."""
    # Given a cluster whose etcd has formed (cluster.json says so, and supervisord.conf renders `existing`)
    cluster = settled
    assert etcd.cluster_state(cluster.layout) == "existing"
    victim = cluster.layout.etcd[-1]
    before = etcd.members(cluster.layout)
    # When a member loses its data and rejoins
    etcd.rejoin(cluster.layout, victim.name)
    # Then it is a started member under a new id, every member is healthy, and the database cluster is too
    after = etcd.members(cluster.layout)
    assert sorted(after) == sorted(before) == sorted(e.name for e in cluster.layout.etcd)
    assert after[victim.name][0] != before[victim.name][0]
    assert all(status == "started" for _, status in after.values())
    assert all(etcd.healthy(cluster.layout).values())
    cluster.settle()
