"""The thesis's published figures (Kharitonov 2020, §5.2 and §5.3) as data, with their table numbers.

Copied from the thesis (Tables 5.1-5.4 in §5.2.2, the §5.2.3 summary, Tables 5.12-5.14 in §5.3.1),
so a run can be set beside them
without anyone retyping a number. Rows of Tables 5.1-5.4 are reads per node (w0, w1, w2, w3); the
first row is the thesis's step "-" (the initial allocation, the baseline) and row ``k + 1`` its step
``k`` (the state after the k-th action). Tables 5.1-5.4 show one sample run, the first of 11.
"""

from __future__ import annotations

from dataclasses import dataclass

NODES: tuple[str, ...] = ("w0", "w1", "w2", "w3")
"""The thesis's node names; our node ``n<i>`` is its ``w<i>`` (w3 holds the hot records under latest)."""

STEP_LABELS_STARVING: tuple[str, ...] = ("-", *map(str, range(16)))
STEP_LABELS_GREEDY: tuple[str, ...] = ("-", *map(str, range(15)))


@dataclass(frozen=True)
class ReadsTable:
    """One of Tables 5.1-5.4: reads per node per step."""

    number: str
    case: str
    source: str  # "benchmark" (YCSB) or "estimate"
    title: str
    rows: tuple[tuple[int, int, int, int], ...]

    @property
    def steps(self) -> tuple[str, ...]:
        return STEP_LABELS_STARVING if self.case == "starving" else STEP_LABELS_GREEDY


TABLE_5_1 = ReadsTable("5.1", "starving", "benchmark", '"Starving": progression of reads per node (YCSB)', (
    (24913, 25059, 24948, 25080),
    (23370, 24993, 24855, 26782),
    (19833, 24910, 24942, 30315),
    (15176, 25012, 24949, 34863),
    (10063, 25028, 24995, 39914),
    (5045, 25229, 24781, 44945),
    (0, 25253, 24749, 49998),
    (0, 24883, 19964, 55153),
    (0, 24944, 15195, 59861),
    (0, 24834, 10177, 64989),
    (0, 25143, 5011, 69846),
    (0, 25164, 0, 74836),
    (0, 20034, 0, 79966),
    (0, 15117, 0, 84883),
    (0, 9825, 0, 90175),
    (0, 5015, 0, 94985),
    (0, 0, 0, 100000),
))

TABLE_5_2 = ReadsTable("5.2", "starving", "estimate", '"Starving": progression of reads per node (estimation)', (
    (24913, 25059, 24948, 25080),
    (22695, 25059, 24948, 27298),
    (18248, 25059, 24948, 31745),
    (13804, 25059, 24948, 36189),
    (9311, 25059, 24948, 40682),
    (4812, 25059, 24948, 45181),
    (0, 25059, 23510, 51431),
    (0, 25059, 18828, 56113),
    (0, 25059, 14168, 60773),
    (0, 25059, 9589, 65352),
    (0, 25059, 4989, 69952),
    (0, 23990, 0, 76010),
    (0, 19190, 0, 80810),
    (0, 14422, 0, 85578),
    (0, 9646, 0, 90354),
    (0, 4957, 0, 95043),
    (0, 0, 0, 100000),
))

TABLE_5_3 = ReadsTable("5.3", "greedy", "benchmark", '"Greedy": progression of reads per node (YCSB)', (
    (2929, 4263, 7174, 85634),
    (2837, 4264, 7193, 85706),
    (2749, 4428, 7122, 85701),
    (2660, 4620, 7161, 85559),
    (2502, 4760, 6985, 85753),
    (2353, 5012, 6978, 85657),
    (10242, 6560, 15754, 67444),
    (24364, 8763, 26753, 40120),
    (29699, 11310, 29423, 29568),
    (28847, 12804, 29314, 29035),
    (27969, 13954, 29150, 28927),
    (25844, 22906, 25333, 25917),
    (25079, 24838, 24982, 25101),
    (25426, 25263, 24556, 24755),
    (24830, 24960, 24906, 25304),
    (24855, 24912, 24917, 25316),
))

TABLE_5_4 = ReadsTable("5.4", "greedy", "estimate", '"Greedy": progression of reads per node (estimation)', (
    (2929, 4263, 7174, 85634),
    (3855, 4301, 6189, 85655),
    (4675, 4326, 5317, 85682),
    (4895, 4820, 4575, 85710),
    (4912, 4839, 4515, 85734),
    (4692, 4857, 4695, 85756),
    (19704, 6004, 5765, 68527),
    (35301, 6753, 15874, 42072),
    (34533, 7064, 20918, 37485),
    (33331, 7243, 26134, 33292),
    (30842, 7426, 30889, 30843),
    (30330, 12536, 30328, 26806),
    (28121, 20390, 27665, 23824),
    (26585, 23608, 26584, 23223),
    (25945, 25518, 25944, 22593),
    (24967, 25011, 25011, 25011),
))

READS_TABLES: dict[tuple[str, str], ReadsTable] = {
    (t.case, t.source): t for t in (TABLE_5_1, TABLE_5_2, TABLE_5_3, TABLE_5_4)
}
"""(case, "benchmark" | "estimate") -> table."""


@dataclass(frozen=True)
class EstimateGap:
    """§5.2.3: how far the estimated throughput is from YCSB's, in % of YCSB's (negative: lower)."""

    case: str
    mean_difference_pct: float
    window: tuple[int, int] | None = None  # thesis steps (inclusive) of a windowed figure
    window_difference_pct: float | None = None
    window_std_estimate: float | None = None
    window_std_benchmark: float | None = None


SECTION_5_2_3: dict[str, EstimateGap] = {
    # "the absolute estimated value of throughput is lower than the real YCSB results by 19.32% on average"
    "starving": EstimateGap("starving", -19.32),
    # "the average value difference between estimation and YCSB measurements is 4.54%, with estimated
    # values on average 7.82% lower between steps 6 and 12"; std over 11 runs 787.12 (estimate) vs
    # 1086.39 (YCSB) between steps 6 and 12. The thesis gives no sign for 4.54 %: read as written.
    "greedy": EstimateGap("greedy", 4.54, (6, 12), -7.82, 787.12, 1086.39),
}

EDGE_CASE_RUNS = 11
"""Each edge case was executed 11 times (§5.2.2); the tables show the first run."""

BENCHMARK_SECONDS = 19.8
"""§5.2.3: mean time from starting a YCSB benchmark in the stage to its result (22 runs)."""
ESTIMATE_SECONDS = 0.0034
"""§5.2.3: the same for the estimation (3.4 ms)."""


@dataclass(frozen=True)
class AgentTable:
    """One of Tables 5.12-5.14: random-valid agents, Thr. Δ % and % of reads from each agent."""

    number: str
    kind: str  # "average" | "best" | "worst"
    thr_delta_pct: float
    reads_pct: tuple[float, float, float, float]


TABLE_5_12 = AgentTable("5.12", "average", 141.750, (24.940, 24.846, 24.931, 25.283))
TABLE_5_13 = AgentTable("5.13", "best", 142.323, (25.015, 24.981, 25.000, 25.004))
TABLE_5_14 = AgentTable("5.14", "worst", 140.632, (24.596, 24.804, 25.059, 25.541))
AGENT_TABLES: dict[str, AgentTable] = {t.kind: t for t in (TABLE_5_12, TABLE_5_13, TABLE_5_14)}

RANDOM_VALID_EPISODES = 1000
"""Table 5.5: the thesis's random-valid evaluation ran 1000 episodes of 1001 steps."""

TABLE_5_5: dict[str, object] = {
    "workload": "latest",  # Listing C.4, the latest "large" YCSB workload
    "do_nothing_worth": 1.0,  # V, Eq 3.8
    "storage_importance": 0.5,  # ϱ, Eq 3.9
    "benchmark_frequency": 25,  # S
    "max_steps": 1001,  # episode length
    "fragments": 20,
    "clients": 50,
    "benchmark": "estimate",  # one real benchmark at initialisation, then the estimator (§5.3)
}
"""Table 5.5's environment settings (the learning hyperparameters do not apply to random agents)."""
