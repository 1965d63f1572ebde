"""The comparison arithmetic on worked examples: shares, differences, §5.2.3 gap, Thr. Δ, targets."""

from __future__ import annotations

import math

import pytest

from mdde_stream.reproduce.compare import (
    Episode,
    agent_tables,
    estimate_gap,
    mean_abs_share_difference,
    reads_target,
    relative_difference_pct,
    share_difference,
    share_target,
    shares_pct,
    thr_delta_pct,
    thr_delta_target,
)
from mdde_stream.reproduce.results import targets
from mdde_stream.reproduce.runner import accepted_options


def test_shares_are_percent_of_each_row_and_an_empty_row_stays_zero() -> None:
    out = shares_pct([[1, 1, 2, 0], [0, 0, 0, 0]])
    assert out.tolist() == [[25.0, 25.0, 50.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_share_difference_is_ours_minus_thesis_in_points_over_the_common_steps() -> None:
    ours = [[50, 50, 0, 0], [0, 0, 0, 100], [1, 1, 1, 1]]  # one step more than the thesis
    published = [[25, 25, 25, 25], [0, 0, 10, 90]]
    diff = share_difference(ours, published)
    assert diff.tolist() == [[25.0, 25.0, -25.0, -25.0], [0.0, 0.0, -10.0, 10.0]]
    # mean over 2 steps x 4 nodes of |diff|: (100 + 20) / 8
    assert mean_abs_share_difference(ours, published) == pytest.approx(15.0)


def test_share_difference_rejects_different_node_counts() -> None:
    with pytest.raises(ValueError, match="same nodes"):
        share_difference([[1, 2, 3]], [[1, 2, 3, 4]])


def test_estimate_gap_skips_the_baseline_and_windows_use_thesis_steps() -> None:
    bench = [100.0, 100.0, 200.0, 50.0, 80.0]  # index 0 = step "-", index k+1 = thesis step k
    est = [100.0, 90.0, 220.0, 40.0, 80.0]
    assert relative_difference_pct(est, bench)[1:].tolist() == pytest.approx([-10.0, 10.0, -20.0, 0.0])
    assert estimate_gap(est, bench) == pytest.approx(-5.0)  # mean of -10, +10, -20, 0
    assert estimate_gap(est, bench, window=(1, 2)) == pytest.approx(-5.0)  # thesis steps 1-2: +10, -20
    assert estimate_gap(est, bench, window=(2, 2)) == pytest.approx(-20.0)


def test_estimate_gap_ignores_steps_without_a_benchmark_figure() -> None:
    assert estimate_gap([1.0, 5.0, 3.0], [1.0, 0.0, 2.0]) == pytest.approx(50.0)
    assert math.isnan(estimate_gap([1.0, 5.0], [1.0, 0.0]))


def test_thr_delta_is_the_change_against_the_first_step_baseline() -> None:
    assert thr_delta_pct(1000.0, 2417.5) == pytest.approx(141.75)
    assert thr_delta_pct(1000.0, 900.0) == pytest.approx(-10.0)
    with pytest.raises(ValueError, match="baseline"):
        thr_delta_pct(0.0, 10.0)


def _episode(seed: int, best: float, reads: list[int], last: float | None = None,
             last_reads: list[int] | None = None) -> Episode:
    return Episode(seed=seed, baseline=100.0, last=last if last is not None else best, best=best,
                   last_node_reads=last_reads or reads, best_node_reads=reads, baseline_source="simulated")


def test_agent_tables_read_each_episodes_best_measurement_and_keep_the_last_beside_it() -> None:
    eps = [_episode(0, 240.0, [25, 25, 25, 25]), _episode(1, 250.0, [30, 20, 25, 25], last=230.0,
                                                         last_reads=[10, 10, 10, 70]),
           _episode(2, 200.0, [10, 10, 10, 70])]
    t = agent_tables(eps)
    assert t["average"]["thr_delta_pct"] == pytest.approx((140 + 150 + 100) / 3)
    assert t["average"]["thr_delta_last_pct"] == pytest.approx((140 + 130 + 100) / 3)
    assert t["average"]["reads_pct"] == pytest.approx([65 / 3, 55 / 3, 20.0, 40.0])
    assert sum(t["average"]["reads_pct"]) == pytest.approx(100.0)
    assert (t["best"]["episode"], t["best"]["thr_delta_pct"], t["best"]["reads_pct"]) == (1, 150.0, [30, 20, 25, 25])
    assert t["best"]["thr_delta_last_pct"] == pytest.approx(130.0)
    assert eps[1].last_reads_pct == [10, 10, 10, 70]
    assert (t["worst"]["episode"], t["worst"]["thr_delta_pct"]) == (2, 100.0)
    with pytest.raises(ValueError):
        agent_tables([])


def test_targets_are_met_at_their_limits_and_not_beyond() -> None:
    assert share_target("5.1", 2.0, 2.0).met and not share_target("5.1", 2.01, 2.0).met
    assert thr_delta_target(126.75, 141.75, 15.0).met and not thr_delta_target(126.7, 141.75, 15.0).met
    assert reads_target([20, 30, 25, 25], 25.0, 5.0).met
    assert not reads_target([19.9, 30, 25, 25.1], 25.0, 5.0).met


def _edge(value: float) -> dict:
    tables = {src: {"thesis_table": num, "mean_abs_share_difference": value} for src, num in
              (("benchmark", "5.3"), ("estimate", "5.4"))}
    return {"greedy": {"tables": tables}}


def test_targets_carry_the_why_given_and_explain_a_missing_numbering() -> None:
    rv = {"tables": {"average": {"ours": {"thr_delta_pct": 14.0, "reads_pct": [25, 25, 25, 25]}}}}
    found = {t["id"]: t for t in targets(_edge(9.0), rv, {"table-5.12-thr-delta": "estimator capped"}, False)}
    assert found["table-5.12-thr-delta"] == {**found["table-5.12-thr-delta"], "met": False, "why": "estimator capped"}
    assert found["table-5.12-reads"]["met"] and found["table-5.12-reads"]["why"] == ""
    assert not found["table-5.3"]["met"] and "numbering" in found["table-5.3"]["why"]
    applied = {t["id"]: t for t in targets(_edge(9.0), None, {}, True)}
    assert applied["table-5.3"]["why"] == ""  # with the numbering applied the cause is not presumed


def test_thr_delta_evidence_names_the_estimators_ceiling() -> None:
    rv = {"estimator_ceiling_pct": 34.5,
          "tables": {"average": {"ours": {"thr_delta_pct": 21.8, "thr_delta_last_pct": 33.1,
                                          "reads_pct": [25, 25, 25, 25]}}}}
    found = {t["id"]: t for t in targets(None, rv, {}, True)}
    why = found["table-5.12-thr-delta"]["why"]
    assert "+21.8 %" in why and "+33.1 %" in why and "+34.5 %" in why and "out of its reach." in why
    rv["estimator_ceiling_pct"] = 141.9
    assert "within its reach" in {t["id"]: t for t in targets(None, rv, {}, True)}["table-5.12-thr-delta"]["why"]


def test_layout_options_pass_only_to_functions_that_take_them() -> None:
    def old(records: int) -> None: ...

    def new(records: int, fragment_numbering: str = "index") -> None: ...

    def loose(records: int, **kwargs: object) -> None: ...

    wanted = {"fragment_numbering": "thesis"}
    assert accepted_options(old, wanted) == {}
    assert accepted_options(new, wanted) == wanted
    assert accepted_options(loose, wanted) == wanted
