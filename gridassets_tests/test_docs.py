"""The README stays short and every link of the docs leads somewhere."""

import re
from pathlib import Path

import pytest

from gridassets import results_doc
from gridassets.settings import ENV_VARS
from gridassets_tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of `page`: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_the_readme_is_at_most_300_lines_and_opens_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    first_block = text[text.index("```sh"):text.index("```", text.index("```sh") + 3)]
    assert "make run" in first_block and "make test" in first_block


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_to_a_file_that_exists(page):
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert broken == [], f"{page.name}: {broken}"


def test_every_setting_is_documented():
    text = "".join(p.read_text() for p in PAGES)
    assert [name for name in ENV_VARS if name not in text] == []
    # The table of the README names the common ones.
    readme = README.read_text()
    for name in ("GRIDASSETS_SOURCE", "GRIDASSETS_DATA_DIR", "GRIDASSETS_WAREHOUSE",
                 "GRIDASSETS_DUCKDB", "GRIDASSETS_SEED", "DAGSTER_HOME"):
        assert f"| `{name}` |" in readme, name


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO_ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][a-z-]*)", README.read_text()))
    assert named and named <= targets, named - targets


def test_the_results_page_has_one_section_per_command():
    text = (REPO_ROOT / "docs" / "results.md").read_text()
    for key in ("evaluate:demo", "evaluate:large", "bench:demo", "bench:utility",
                "bench:utility:years", "bench:large"):
        start, end = results_doc.markers(key)
        assert text.count(start) == text.count(end) == 1, key
        assert text.index(start) < text.index(end), key


def test_the_anchor_rule_follows_github():
    page = REPO_ROOT / "docs" / "operations.md"
    assert {"two-runs-at-once-the-duckdb-lock-and-the-duckdb-pool", "when-a-runs-process-dies",
            "troubleshooting"} <= anchors(page)
