"""The sections of the docs that `make bench` and `make evaluate` write themselves."""

from datetime import datetime, timezone

import pytest

from gridassets import results_doc
from gridassets.evaluation import report

PAGE = """# Results

Prose a person wrote.

<!-- bench:demo:start -->
old demo figures
<!-- bench:demo:end -->

Between the sections.

<!-- bench:utility:start -->
utility figures
<!-- bench:utility:end -->

The end.
"""


def test_rewrite_replaces_only_its_own_section(tmp_path):
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    results_doc.rewrite_section(page, "bench:demo", "new demo figures\n")
    assert page.read_text() == PAGE.replace("old demo figures", "new demo figures")
    # Again with the same body: nothing moves.
    results_doc.rewrite_section(page, "bench:demo", "new demo figures")
    assert page.read_text() == PAGE.replace("old demo figures", "new demo figures")


def test_a_missing_section_is_added_at_the_end_and_a_missing_page_created(tmp_path):
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    results_doc.rewrite_section(page, "evaluate:large", "large figures")
    text = page.read_text()
    assert text.startswith(PAGE.rstrip())
    assert text.endswith("<!-- evaluate:large:start -->\nlarge figures\n"
                         "<!-- evaluate:large:end -->\n")

    fresh = tmp_path / "new.md"
    results_doc.rewrite_section(fresh, "bench:demo", "figures")
    assert fresh.read_text() == "<!-- bench:demo:start -->\nfigures\n<!-- bench:demo:end -->\n"


@pytest.mark.parametrize("broken, what", [
    (PAGE.replace("<!-- bench:demo:end -->\n", ""), "1 start and 0 end"),
    (PAGE.replace("<!-- bench:demo:start -->\n", ""), "0 start and 1 end"),
    (PAGE + "<!-- bench:demo:start -->\n", "2 start and 1 end"),
    (PAGE.replace("<!-- bench:demo:start -->", "<!-- x -->").replace(
        "<!-- bench:demo:end -->", "<!-- bench:demo:start -->").replace(
        "<!-- x -->", "<!-- bench:demo:end -->"), "the end first"),
])
def test_unbalanced_markers_are_refused_and_nothing_is_written(tmp_path, broken, what):
    page = tmp_path / "results.md"
    page.write_text(broken)
    with pytest.raises(results_doc.MarkerError, match=what) as exc:
        results_doc.rewrite_section(page, "bench:demo", "new")
    assert "bench:demo" in str(exc.value) and str(page) in str(exc.value)
    assert page.read_text() == broken


def test_a_section_name_cannot_close_the_comment():
    with pytest.raises(ValueError):
        results_doc.markers("bench --> demo")


def test_a_measured_section_says_when_where_and_by_which_command():
    machine = {"cpus": 2, "cpu_model": "AMD EPYC 7B13", "memory_gib": 23.5,
               "platform": "Linux-6.1-x86_64", "python": "3.11.7",
               "versions": {"dagster": "1.13.27"}}
    text = results_doc.measured("| a | b |", "python -m gridassets bench --scale demo",
                                when=datetime(2026, 12, 7, 3, 4, tzinfo=timezone.utc),
                                machine_info=machine)
    assert text.splitlines()[0] == (
        "Measured 2026-12-07 03:04 UTC by `python -m gridassets bench --scale demo` on 2 CPUs "
        "(AMD EPYC 7B13), 23.5 GiB, Linux-6.1-x86_64, Python 3.11.7, dagster 1.13.27.")
    assert text.endswith("\n\n| a | b |")


def test_this_machine_is_described_from_proc():
    m = results_doc.machine()
    assert m["cpus"] >= 1 and m["python"].startswith("3.")
    assert m.get("memory_gib", 0) > 0 and m.get("cpu_model")


def test_tee_passes_lines_on_and_keeps_them():
    shown = []
    tee = results_doc.Tee(shown.append)
    tee("one")
    tee()
    tee("two")
    assert shown == ["one", "", "two"] and tee.text == "one\n\ntwo"


def test_the_evaluation_section_says_what_it_ran_on_and_shows_the_report():
    result = {"scale": {"source": "synthetic", "circuits": 200, "transformers": 4000, "seed": 7},
              "window": ["2024-07-01", "2025-06-30"]}
    body = report.docs_section(result, "\nIntegration lift\n  integrated list 27.5 %\n")
    assert body == ("synthetic data, 200 circuits, 4000 transformers, seed 7; history "
                    "2024-07-01..2025-06-30.\n\n```text\nIntegration lift\n"
                    "  integrated list 27.5 %\n```")


def test_bench_scaleout_writes_its_section_through_the_same_helper(tmp_path):
    from gridassets.scaleout import bench as scaleout_bench

    page = tmp_path / "scaleout.md"
    page.write_text("# Scale-out\n\n<!-- bench-scaleout:demo:start -->\nold\n"
                    "<!-- bench-scaleout:demo:end -->\n")
    result = {"scale": "demo", "first": "2025-06-02", "last": "2025-07-01",
              "fleet": {"GRIDASSETS_CIRCUITS": "12", "GRIDASSETS_TRANSFORMERS": "600"},
              "groups": ["raw"], "models": False,
              "configurations": [{"label": "one process (embedded)", "seconds": 65.0,
                                  "speedup": 1.0}],
              "command": "python -m gridassets scaleout bench --scale demo --write-docs",
              "measured_at": "2026-12-02T10:00:00+00:00", "machine": {"cpus": 2}}
    scaleout_bench.write_docs(result, page)
    text = page.read_text()
    assert "old" not in text and text.startswith("# Scale-out\n\n<!-- bench-scaleout:demo:start")
    assert ("Measured 2026-12-02 10:00 UTC by `python -m gridassets scaleout bench --scale demo "
            "--write-docs` on 2 CPUs") in text
    assert "| one process (embedded) | 65 | 1.00× | – | – |" in text
