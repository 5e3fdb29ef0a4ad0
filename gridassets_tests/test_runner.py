"""How `make run` and the benchmark split a history into runs."""

from datetime import date

from gridassets import runner


def test_a_run_covers_fewer_days_as_the_fleet_grows():
    assert runner.chunk_days(2_000) == runner.chunk_days(20_000) == runner.CHUNK_DAYS == 31
    assert runner.chunk_days(200_000) == 7
    assert runner.chunk_days(5_000_000) == 1


def test_the_configured_fleet_sets_the_days_per_run(monkeypatch):
    monkeypatch.setenv("GRIDASSETS_CIRCUITS", "5000")
    monkeypatch.setenv("GRIDASSETS_TRANSFORMERS", "200000")
    assert runner.chunk_days() == 7
    ranges = runner.chunks(date(2024, 12, 16), date(2025, 1, 21), runner.chunk_days())
    assert ranges[0] == (date(2024, 12, 16), date(2024, 12, 22))
    assert ranges[-1] == (date(2025, 1, 20), date(2025, 1, 21))
    assert len(ranges) == 6
