"""The hook that turns `dagster asset materialize --partition <day outside the window>` into one
line (the real CLI: gridassets_tests/e2e/test_window_commands.py)."""

import sys

from dagster._core.errors import DagsterInvalidSubsetError

from gridassets.defs import partitions


def unknown(key: str) -> DagsterInvalidSubsetError:
    # Dagster's own words (dagster/_cli/asset.py, execute_materialize_command).
    return DagsterInvalidSubsetError(
        "All selected assets must have a PartitionsDefinition containing the passed partition key "
        f"`{key}` or have no PartitionsDefinition.")


def test_a_day_before_the_partitions_is_one_line_and_nothing_else(capsys):
    passed_on = []
    hook = partitions._explain_unknown_partition(lambda *exc: passed_on.append(exc))
    hook(DagsterInvalidSubsetError, unknown("2000-01-03"), None)
    err = capsys.readouterr().err
    assert err.startswith(f"gridassets: partition 2000-01-03 is outside the daily partitions "
                          f"{partitions.HISTORY_START}..")
    assert err.count("\n") == 1 and passed_on == []


def test_every_other_error_goes_to_the_previous_hook(capsys):
    passed_on = []
    hook = partitions._explain_unknown_partition(lambda *exc: passed_on.append(exc))
    inside = unknown(partitions.HISTORY_START + "x")  # not a time key (a storm, a typo)
    other = ValueError("partition key `2000-01-03`")  # another error naming an old day
    for error in (inside, other):
        hook(type(error), error, None)
    assert [e for _, e, _ in passed_on] == [inside, other]
    assert capsys.readouterr().err == ""


def test_the_hook_is_installed_once_and_chains(monkeypatch):
    import gridassets.definitions  # noqa: F401  (installs it as the definitions load)

    passed_on = []

    def previous(*exc):
        passed_on.append(exc)

    monkeypatch.setattr(sys, "excepthook", previous)
    partitions.explain_unknown_partitions()
    installed = sys.excepthook
    partitions.explain_unknown_partitions()
    assert sys.excepthook is installed and installed is not previous
    error = ValueError("not ours")
    installed(ValueError, error, None)
    assert passed_on == [(ValueError, error, None)]
