"""The workloads of issue 6, each on the real stack, and how each figure is measured.

The scheduler's defaults for unseen tests and builds (SCHEDULER_DEFAULT_TEST_S,
SCHEDULER_DEFAULT_INSTALL_S) are set to the simulated T and I, as an operator who knows the
suite would; in the durations workload the cold run therefore plans with T for every test,
the warm run with each test's history.

Every run uses its own org ids and app versions (a fresh `run_id`), so no run finds agents
warm from another (except where warmth is the point: the affinity rerun, the dispatch
latency), and its records are told apart from the others'.

- standard: K agents, N jobs over V versions, install I, test T. Submitted as one request
  (`makespan_s`, `makespan_ratio` = makespan / the issue's lower bound, `installs`), again
  one job per request (`single_makespan_ratio`), and as one request under `fifo`
  (`fifo_makespan_s`, `fifo_speedup` = fifo makespan / qgjob makespan).
- affinity: K agents, V = K versions of equal size, then the same suite again on the warm
  agents (`affinity_ratio`, `affinity_installs`, `rerun_installs`).
- durations: tests with SIM_TEST_SECONDS = A..B (one fixed duration per test path), run
  cold, then again with new versions of the same tests, with their history
  (`durations_cold_ratio`, `durations_warm_ratio`; the bound from the durations reported).
- fairness: org A submits a large suite, 1 s later org B a small one
  (`small_org_done_s`: B's last end since B submitted; `big_org_makespan_s`).
- no-op throughput: one agent, I = T = 0, N jobs end to end, first creation to last end
  (`noop_jobs_per_s`), and raw RQ: one SimpleWorker draining N no-op jobs on the stack's
  Redis, drain time only (`rq_noop_jobs_per_s`).
- intake: `POST /submit` (durable: stored and broker-confirmed) against `/healthz`, same
  client, same seconds each (`submit_per_s`, `healthz_per_s`), and one request of 1,000
  jobs (`suite_1000_submit_s`). Jobs target `device`, which has no agents here: they wait.
- dispatch: single jobs at about 25% of the warm agents' capacity; per job, created to
  started (`dispatch_p50_ms`, `dispatch_p99_ms`).
- scale: the affinity suite on 1 agent and on K (`scale_1_to_4` = makespan on 1 / on K).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from bench import metrics
from bench.stack import Stack, jobs_for, log, run_id

Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    agents: int
    install_s: float
    test_s: float
    standard_jobs: int
    standard_versions: int
    affinity_per_version: int
    durations_tests: int
    durations_range: tuple[float, float]
    fairness_big: int
    fairness_small: int
    noop_jobs: int
    intake_seconds: float
    dispatch_jobs: int
    timeout_s: float


FULL = Sizes(4, 2.0, 0.2, 200, 5, 40, 160, (0.05, 3.0), 400, 10, 2000, 5.0, 200, 600)
QUICK = Sizes(4, 0.5, 0.05, 80, 5, 20, 60, (0.02, 0.6), 200, 10, 300, 2.0, 40, 180)


class Bench:
    def __init__(self, stack: Stack, sizes: Sizes) -> None:
        self.stack = stack
        self.sizes = sizes
        self.figures: Result = {}
        self.summary: list[str] = []
        self.timelines: dict[str, list[dict[str, Any]]] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}  # every run's job records, by name
        self.loads: list[float] = []  # the 1-minute load average at each summary line

    def up(self, agents: int, settings: dict[str, str]) -> None:
        """(Re)start the stack, then warm it up untimed: fresh processes pay their first
        connections and imports here, not in the first measured run. The warm-up uses
        versions of its own, so the measured runs still start with cold builds."""
        self.stack.up(agents, settings, build=not self.records)
        rid = run_id()
        versions = [f"warmup-{rid}-v{i}" for i in range(agents)]
        self.run_suite(f"warm-up {rid}", jobs_for(f"warmup-{rid}", versions, agents * 3))

    def note(self, line: str) -> None:
        """A workload's summary line, with the load average it ran under (the figures of a
        shared machine mean little without it); the JSON keeps the lowest and highest."""
        load = os.getloadavg()[0]
        self.loads.append(load)
        self.figures["load_avg_min"] = round(min(self.loads), 1)
        self.figures["load_avg_max"] = round(max(self.loads), 1)
        self.summary.append(f"{line} [load {load:.1f}]")
        log(line)

    def base_settings(self, policy: str = "qgjob") -> dict[str, str]:
        s = self.sizes
        return {
            "SIM_INSTALL_SECONDS": f"{s.install_s:g}",
            "SIM_TEST_SECONDS": f"{s.test_s:g}",
            "SCHEDULER_POLICY": policy,
            # What an operator who knows the suite would configure for unseen tests/builds.
            "SCHEDULER_DEFAULT_TEST_S": f"{s.test_s:g}",
            "SCHEDULER_DEFAULT_INSTALL_S": f"{s.install_s:g}",
        }

    def run_suite(
        self, name: str, jobs: list[dict[str, Any]], *, single: bool = False
    ) -> list[dict[str, Any]]:
        submit = self.stack.submit_each if single else self.stack.submit_suite
        ids = submit(jobs)
        return self.keep(name, self.stack.wait_final(ids, self.sizes.timeout_s))

    def keep(self, name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.records[name] = records
        return records

    # --- workloads -------------------------------------------------------------------

    def standard(self) -> None:
        s = self.sizes
        k, n, v = s.agents, s.standard_jobs, s.standard_versions
        bound = metrics.standard_lower_bound(n, v, k, s.install_s, s.test_s)
        self.figures["lower_bound_s"] = round(bound, 3)
        rid = run_id()
        versions = [f"std-{rid}-v{i}" for i in range(v)]
        records = self.run_suite("standard", jobs_for(f"std-{rid}", versions, n))
        makespan = metrics.makespan_s(records)
        self.timelines["qgjob"] = records
        rid = run_id()
        versions = [f"one-{rid}-v{i}" for i in range(v)]
        single = self.run_suite("standard single", jobs_for(f"one-{rid}", versions, n), single=True)
        single_makespan = metrics.makespan_s(single)
        self.figures.update(
            makespan_s=round(makespan, 3),
            makespan_ratio=round(metrics.ratio(makespan, bound), 3),
            single_makespan_ratio=round(metrics.ratio(single_makespan, bound), 3),
            installs=metrics.installs(records),
        )
        self.note(
            f"standard: K={k} N={n} V={v} I={s.install_s:g}s T={s.test_s:g}s: "
            f"makespan {makespan:.2f}s (bound {bound:.2f}s, x{makespan / bound:.2f}), "
            f"{metrics.installs(records)} installs; one job per request "
            f"{single_makespan:.2f}s (x{single_makespan / bound:.2f}), "
            f"{metrics.installs(single)} installs"
        )

    def standard_fifo(self) -> None:
        s = self.sizes
        rid = run_id()
        versions = [f"fifo-{rid}-v{i}" for i in range(s.standard_versions)]
        records = self.run_suite(
            "standard fifo", jobs_for(f"fifo-{rid}", versions, s.standard_jobs)
        )
        makespan = metrics.makespan_s(records)
        self.timelines["fifo"] = records
        qgjob = self.figures.get("makespan_s")
        self.figures["fifo_makespan_s"] = round(makespan, 3)
        self.figures["fifo_speedup"] = round(makespan / qgjob, 3) if qgjob else None
        self.note(
            f"standard under fifo: makespan {makespan:.2f}s, "
            f"{metrics.installs(records)} installs; qgjob is x{makespan / (qgjob or 1):.2f} "
            "faster"
        )

    def affinity(self) -> None:
        s = self.sizes
        k, per = s.agents, s.affinity_per_version
        bound = metrics.standard_lower_bound(k * per, k, k, s.install_s, s.test_s)
        rid = run_id()
        versions = [f"aff-{rid}-v{i}" for i in range(k)]
        suite = jobs_for(f"aff-{rid}", versions, k * per)
        first = self.run_suite("affinity", suite)
        rerun = self.run_suite("affinity rerun", suite)
        makespan = metrics.makespan_s(first)
        self.figures.update(
            affinity_ratio=round(metrics.ratio(makespan, bound), 3),
            affinity_installs=metrics.installs(first),
            rerun_installs=metrics.installs(rerun),
        )
        self.note(
            f"affinity: {k} versions x {per} jobs on {k} agents: makespan {makespan:.2f}s "
            f"(bound {bound:.2f}s, x{makespan / bound:.2f}), {metrics.installs(first)} "
            f"installs; rerun on warm agents: {metrics.installs(rerun)} installs, "
            f"{metrics.makespan_s(rerun):.2f}s"
        )

    def scale(self, agents: int) -> float:
        """The affinity suite's makespan on `agents` agents (the stack must have them)."""
        s = self.sizes
        rid = run_id()
        versions = [f"scale{agents}-{rid}-v{i}" for i in range(s.agents)]
        suite = jobs_for(f"scale-{rid}", versions, s.agents * s.affinity_per_version)
        makespan = metrics.makespan_s(self.run_suite(f"scale {agents}", suite))
        self.note(f"scale: the affinity suite on {agents} agent(s): {makespan:.2f}s")
        return makespan

    def durations(self) -> None:
        s = self.sizes
        low, high = s.durations_range
        rid = run_id()
        org = f"dur-{rid}"
        paths = [f"tests/{org}/t{i}.spec.js" for i in range(s.durations_tests)]
        ratios = []
        for phase in ("cold", "warm"):
            versions = [f"dur-{rid}-{phase}-v{i}" for i in range(2)]
            records = self.run_suite(
                f"durations {phase}", jobs_for(org, versions, len(paths), paths=paths)
            )
            by_build: dict[str, list[float]] = {}
            for r in records:
                by_build.setdefault(r["app_version_id"], []).append(r["result"]["duration_s"])
            bound = metrics.durations_lower_bound(by_build, s.agents, s.install_s)
            makespan = metrics.makespan_s(records)
            ratios.append(metrics.ratio(makespan, bound))
            self.note(
                f"durations ({phase}): {len(paths)} tests of 2 versions, "
                f"SIM_TEST_SECONDS={low:g}..{high:g}: makespan {makespan:.2f}s, "
                f"bound {bound:.2f}s (x{makespan / bound:.2f}), "
                f"{metrics.installs(records)} installs"
            )
        self.figures["durations_cold_ratio"] = round(ratios[0], 3)
        self.figures["durations_warm_ratio"] = round(ratios[1], 3)

    def fairness(self) -> None:
        s = self.sizes
        rid = run_id()
        big = jobs_for(f"big-{rid}", [f"big-{rid}-v{i}" for i in range(2)], s.fairness_big)
        small = jobs_for(f"small-{rid}", [f"small-{rid}-v0"], s.fairness_small)
        big_ids = self.stack.submit_suite(big)
        time.sleep(1.0)  # the workload: B submits 1 s after A
        small_ids = self.stack.submit_suite(small)
        # org A's jobs still run when B's are done: B's end must not wait for idle agents
        small_records = self.keep(
            "fairness small", self.stack.wait_final(small_ids, s.timeout_s, then_idle=False)
        )
        big_records = self.keep("fairness big", self.stack.wait_final(big_ids, s.timeout_s))
        small_done = metrics.makespan_s(small_records)
        big_makespan = metrics.makespan_s(big_records)
        self.figures["small_org_done_s"] = round(small_done, 3)
        self.figures["big_org_makespan_s"] = round(big_makespan, 3)
        self.note(
            f"fairness: org A {s.fairness_big} jobs, 1 s later org B {s.fairness_small}: "
            f"B done {small_done:.2f}s after submitting, A's makespan {big_makespan:.2f}s "
            f"(B/A = {small_done / big_makespan:.2f})"
        )

    def dispatch(self) -> None:
        s = self.sizes
        rid = run_id()
        org, version = f"lat-{rid}", f"lat-{rid}-v0"
        # Warm every agent on the version first.
        self.run_suite("dispatch warm-up", jobs_for(org, [version], s.agents * 2))
        interval = s.test_s / (0.25 * s.agents)  # about 25% of the agents' capacity
        ids = []
        start = time.monotonic()
        for i, job in enumerate(jobs_for(org, [version], s.dispatch_jobs)):
            job["test_path"] = f"tests/{org}/late{i}.spec.js"
            ids += self.stack.submit_suite([job])
            pause = start + (i + 1) * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        records = self.keep("dispatch", self.stack.wait_final(ids, s.timeout_s))
        warm = [r for r in records if not r["result"]["install_paid"]]
        latencies = metrics.dispatch_latencies_ms(warm)
        p50, p99 = metrics.percentile(latencies, 0.5), metrics.percentile(latencies, 0.99)
        self.figures["dispatch_p50_ms"] = round(p50, 1)
        self.figures["dispatch_p99_ms"] = round(p99, 1)
        self.note(
            f"dispatch: {len(ids)} single jobs, one every {interval * 1000:.0f} ms (~25% load): "
            f"ready -> running p50 {p50:.0f} ms, p99 {p99:.0f} ms "
            f"({len(records) - len(warm)} paid an install, left out)"
        )

    def noop(self) -> None:
        s = self.sizes
        rid = run_id()
        records = self.run_suite("noop", jobs_for(f"noop-{rid}", [f"noop-{rid}-v0"], s.noop_jobs))
        rate = len(records) / metrics.makespan_s(records)
        baseline = self.stack.rq_baseline(s.noop_jobs)
        rq_rate = baseline["jobs"] / baseline["seconds"]
        self.figures["noop_jobs_per_s"] = round(rate, 1)
        self.figures["rq_noop_jobs_per_s"] = round(rq_rate, 1)
        self.note(
            f"no-op: {len(records)} jobs on 1 agent, end to end {rate:.0f} jobs/s; "
            f"raw RQ SimpleWorker {rq_rate:.0f} jobs/s (x{rate / rq_rate:.2f})"
        )

    def intake(self) -> None:
        s = self.sizes
        session = requests.Session()
        api = self.stack.api
        job = {"org_id": "intake", "app_version_id": "v1", "test_path": "t.js", "target": "device"}

        def rate(call: Callable[[], requests.Response]) -> float:
            count, deadline = 0, time.monotonic() + s.intake_seconds
            started = time.monotonic()
            while time.monotonic() < deadline:
                call().raise_for_status()
                count += 1
            return count / (time.monotonic() - started)

        healthz = rate(lambda: session.get(f"{api}/healthz", timeout=10))
        submit = rate(lambda: session.post(f"{api}/submit", json=job, timeout=10))
        suite = [dict(job, test_path=f"t{i}.js") for i in range(1000)]
        started = time.monotonic()
        response = session.post(f"{api}/v1/jobs", json=suite, timeout=120)
        response.raise_for_status()
        suite_s = time.monotonic() - started
        self.figures.update(
            submit_per_s=round(submit, 1),
            healthz_per_s=round(healthz, 1),
            suite_1000_submit_s=round(suite_s, 3),
        )
        self.note(
            f"intake (one client, sequential): POST /submit {submit:.0f}/s, /healthz "
            f"{healthz:.0f}/s (x{submit / healthz:.2f}); 1,000 jobs in one request "
            f"{suite_s:.2f}s"
        )
