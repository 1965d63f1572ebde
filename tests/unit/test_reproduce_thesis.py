"""The thesis's published figures kept as data: complete, consistent, and copied without slips."""

from __future__ import annotations

import pytest

from mdde_stream.reproduce import thesis


@pytest.mark.parametrize("table", [thesis.TABLE_5_1, thesis.TABLE_5_2, thesis.TABLE_5_3, thesis.TABLE_5_4],
                         ids=lambda t: t.number)
def test_every_row_of_tables_5_1_to_5_4_sums_to_the_100000_reads(table: thesis.ReadsTable) -> None:
    assert len(table.rows) == len(table.steps)
    for label, row in zip(table.steps, table.rows):
        assert len(row) == 4
        assert abs(sum(row) - 100_000) <= 5, f"Table {table.number} step {label}: {row} sums to {sum(row)}"


def test_row_counts_and_step_labels_follow_the_cases() -> None:
    assert thesis.TABLE_5_1.steps == ("-", *map(str, range(16)))  # starving: baseline + 16 steps
    assert thesis.TABLE_5_3.steps == ("-", *map(str, range(15)))  # greedy: baseline + 15 steps


def test_benchmark_and_estimate_tables_share_their_baseline_row() -> None:
    assert thesis.TABLE_5_1.rows[0] == thesis.TABLE_5_2.rows[0]
    assert thesis.TABLE_5_3.rows[0] == thesis.TABLE_5_4.rows[0]


def test_the_starving_case_ends_with_every_read_on_w3_and_greedy_near_a_quarter() -> None:
    assert thesis.TABLE_5_1.rows[-1] == thesis.TABLE_5_2.rows[-1] == (0, 0, 0, 100_000)
    for table in (thesis.TABLE_5_3, thesis.TABLE_5_4):
        assert all(24_000 < v < 26_000 for v in table.rows[-1])


@pytest.mark.parametrize("table", list(thesis.AGENT_TABLES.values()), ids=lambda t: t.number)
def test_reads_shares_of_tables_5_12_to_5_14_sum_to_100_percent(table: thesis.AgentTable) -> None:
    assert sum(table.reads_pct) == pytest.approx(100.0, abs=0.01)


def test_tables_5_12_to_5_14_order_average_best_worst() -> None:
    avg, best, worst = (thesis.AGENT_TABLES[k].thr_delta_pct for k in ("average", "best", "worst"))
    assert (avg, best, worst) == (141.750, 142.323, 140.632)
    assert worst < avg < best


def test_section_5_2_3_and_timing_figures() -> None:
    assert thesis.SECTION_5_2_3["starving"].mean_difference_pct == -19.32
    greedy = thesis.SECTION_5_2_3["greedy"]
    assert (greedy.mean_difference_pct, greedy.window, greedy.window_difference_pct) == (4.54, (6, 12), -7.82)
    assert thesis.BENCHMARK_SECONDS / thesis.ESTIMATE_SECONDS == pytest.approx(5823.5, rel=1e-3)
    assert thesis.TABLE_5_5["max_steps"] == 1001 and thesis.TABLE_5_5["benchmark_frequency"] == 25


def test_table_5_5_as_published_is_what_the_environment_defaults_to() -> None:
    from mdde_stream.env import EnvConfig

    defaults = EnvConfig()
    for field, value in thesis.TABLE_5_5.items():
        assert getattr(defaults, field) == value, field
