"""The stage declaration: options, the rows a run owns, and what derives from them."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from spark_jobs import reference
from spark_jobs.common import DateRange
from spark_jobs.pipeline import BY_NAME, PIPELINES, STAGES
from spark_jobs.stage import WHOLE_TABLE, Param, dates_from, run_dates, run_months, wap_branch

D = dt.date.fromisoformat


def test_an_option_parses_its_flag_text_and_refuses_values_out_of_bounds():
    share = Param("hot_key_min_share", "float", 0.01, "h", exclusive_minimum=0, maximum=1)
    assert share.flag == "--hot-key-min-share" and share.parse("0.5") == 0.5
    with pytest.raises(ValueError, match="expected more than 0, got 0.0"):
        share.parse("0")
    with pytest.raises(ValueError, match="expected at most 1, got 1.5"):
        share.parse("1.5")
    with pytest.raises(ValueError, match="expected a number, got 'x'"):
        share.parse("x")
    actions = Param("latency_actions", "list", ("page_view",), "a")
    assert actions.parse(" page_view, edit ,") == ("page_view", "edit")
    assert actions.argument(("page_view", "edit")) == "page_view,edit"
    with pytest.raises(ValueError, match="at least one value"):
        actions.parse(" , ")
    strategy = Param("join_strategy", "str", "auto", "s", choices=("auto", "salted"))
    with pytest.raises(ValueError, match=r"expected one of \['auto', 'salted'\], got 'fast'"):
        strategy.parse("fast")
    with pytest.raises(ValueError, match="expected at least 1"):
        Param("gap", "int", 0, "a default out of its own bounds is refused", minimum=1)


def test_the_form_field_has_the_same_bounds_as_the_flag():
    assert Param("n", "int", 20, "h", minimum=1).json_schema() == {"type": "integer", "minimum": 1}
    assert Param("f", "float", 0.01, "h", exclusive_minimum=0, maximum=1).json_schema() == {
        "type": "number", "exclusiveMinimum": 0, "maximum": 1}
    assert Param("l", "list", ("a",), "h").json_schema() == {"type": "array", "items": {"type": "string"}, "minItems": 1}
    assert Param("p", "path", None, "h").json_schema() == {"type": ["null", "string"]}
    assert Param("s", "str", "auto", "h", choices=("auto", "x")).json_schema() == {"type": "string", "enum": ["auto", "x"]}


def test_a_job_refuses_a_bad_option_with_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        BY_NAME["sessions"].parse_args(["--session-gap-seconds", "0"])
    assert exit_.value.code == 2
    assert "--session-gap-seconds: expected at least 1, got 0" in capsys.readouterr().err
    args, dates = BY_NAME["sessions"].parse_args(["--session-gap-seconds", "1200", "--start-date", "2023-07-02"])
    assert args.session_gap_seconds == 1200 and dates == DateRange(D("2023-07-02"), D("2023-07-02"))


def test_the_run_branch_is_the_run_id_made_safe():
    assert wap_branch("scheduled__2023-07-02T00:00:00+00:00") == "wap_scheduled_2023_07_02t00_00_00_00_00"


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_every_option_name_is_unique_across_the_stages_of_a_pipeline(pipeline):
    names = [p.name for s in PIPELINES[pipeline] for p in s.params]
    assert len(names) == len(set(names))


def owned_dates(spark, owns, run, column: str, days: list[str]) -> list[str]:
    df = spark.createDataFrame([(D(d),) for d in days], f"{column} date")
    return sorted(str(r[0]) for r in df.where(owns.rows(run)).collect())


def test_the_rows_a_run_owns(spark):
    days = ["2023-06-30", "2023-07-01", "2023-07-02", "2023-07-03", "2023-07-04", "2023-07-31", "2023-08-01"]
    run = SimpleNamespace(dates=DateRange(D("2023-07-01"), D("2023-07-02")), facts={})
    assert owned_dates(spark, run_dates("d"), run, "d", days) == ["2023-07-01", "2023-07-02"]
    assert owned_dates(spark, run_dates("d", days_after=2), run, "d", days) == [
        "2023-07-01", "2023-07-02", "2023-07-03", "2023-07-04"]
    months = ["2023-06-01", "2023-07-01", "2023-08-01"]
    assert owned_dates(spark, run_months("m"), run, "m", months) == ["2023-07-01"]
    across = SimpleNamespace(dates=DateRange(D("2023-06-30"), D("2023-07-01")), facts={})
    assert owned_dates(spark, run_months("m"), across, "m", months) == ["2023-06-01", "2023-07-01"]
    run.facts["first"] = D("2023-06-30")
    assert owned_dates(spark, dates_from("d", "first", "x"), run, "d", days) == days
    run.facts["first"] = D("2023-07-03")
    assert owned_dates(spark, dates_from("d", "first", "x"), run, "d", days) == [
        "2023-07-03", "2023-07-04", "2023-07-31", "2023-08-01"]
    everything = SimpleNamespace(dates=DateRange(), facts={})
    for owns in (run_dates("d", days_after=3), dates_from("d", "first", "x"), WHOLE_TABLE):
        assert owned_dates(spark, owns, everything, "d", days) == days


def test_the_gold_stages_own_the_dates_their_figures_reach():
    owns = {o.name: o.owns.describe for s in STAGES for o in s.outputs}
    assert owns["gold.daily_engagement"] == "`event_date` in the run's dates and the 29 days after"
    assert owns["gold.usage_anomalies"] == "`event_date` in the run's dates and the 14 days after"
    assert owns["gold.monthly_active_users"] == "`month` in the months of the run's dates"
    assert owns["gold.sessions"].startswith("`session_date` from the date of the first session")


def test_docs_stages_page_is_what_the_declarations_say():
    assert reference.PAGE.read_text() == reference.render(), "run: python -m spark_jobs.reference"
