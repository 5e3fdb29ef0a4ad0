"""The product's own security, held by tests (docs/security.md):

1. every command the project ships that starts the Dagster UI binds it to 127.0.0.1;
2. no secret is committed: every git-tracked file is scanned;
3. alert files cannot write outside their folders (gridassets_tests/storage/test_alert_paths.py);
4. no value is formatted into SQL text: the package's sources are scanned with `ast`;
5. landing and alert files are bounded in size before they are read.

Each scanner is a pure function over text, and each is shown to report a planted bad example, so a
scanner that silently stopped matching would fail here. Planted secrets are assembled at run time,
so this file does not trip its own scan.
"""

from __future__ import annotations

import ast
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest

from gridassets.domain import landing
from gridassets.domain.alerts import MAX_FILE_BYTES
from gridassets.domain.schemas import CIRCUITS, FEEDER_LOAD

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gridassets"
LOOPBACK = "127.0.0.1"
ANY_ADDRESS = ".".join(["0"] * 4)


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
    return [ROOT / name for name in out.stdout.decode().split("\0") if name]


def package_sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


# --------------------------------------------------------------------------------------------
# 1. The UI binds to 127.0.0.1

# A shell command that starts the UI: `dagster dev ...` or `dagster-webserver ...` with arguments.
UI_COMMAND = re.compile(r"\bdagster(?:-webserver|_webserver| dev)\b(?=\s+-)")
HOST_FLAG = re.compile(r"(?:^|\s)(?:-h|--host)(?:\s+|=)(\S+)")


def ui_command_problems(text: str, where: str) -> list[str]:
    """Every line of `text` (a Makefile, shell script or doc) that starts the UI without binding
    it to 127.0.0.1, or that names the any-address; continuation lines are joined first."""
    problems = []
    joined = re.sub(r"\\\n", " ", text)
    for number, line in enumerate(joined.splitlines(), 1):
        if ANY_ADDRESS in line:
            problems.append(f"{where}:{number}: binds to {ANY_ADDRESS}: {line.strip()}")
        if not UI_COMMAND.search(line):
            continue
        hosts = [h.strip("`'\"") for h in HOST_FLAG.findall(line[UI_COMMAND.search(line).start():])]
        if hosts != [LOOPBACK]:
            problems.append(f"{where}:{number}: starts the UI with host {hosts or 'unset'}, "
                            f"not {LOOPBACK}: {line.strip()}")
    return problems


def _argv_strings(node: ast.AST) -> list[str | None]:
    """The elements of a list/tuple literal as text (None where not a literal string); a path built
    with `/` counts as its last literal part (`bindir / "dagster-webserver"`)."""
    out: list[str | None] = []
    for element in node.elts:  # type: ignore[attr-defined]
        while isinstance(element, ast.Call) and getattr(element.func, "id", None) == "str" \
                and element.args:
            element = element.args[0]
        if isinstance(element, ast.BinOp) and isinstance(element.op, ast.Div):
            element = element.right
        out.append(element.value if isinstance(element, ast.Constant)
                   and isinstance(element.value, str) else None)
    return out


def webserver_argv_problems(source: str, where: str) -> tuple[list[str], int]:
    """(problems, commands found) for argument lists in Python `source` that start the UI
    (`dagster-webserver ...`, `dagster dev ...`, `-m dagster_webserver`)."""
    problems, found = [], 0
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.List, ast.Tuple)):
            continue
        argv = _argv_strings(node)
        names = [Path(a).name if a else None for a in argv]
        starts_ui = ("dagster-webserver" in names or "dagster_webserver" in names
                     or any(a == "dagster" and b == "dev" for a, b in zip(names, names[1:])))
        if not starts_ui:
            continue
        found += 1
        hosts = [b for a, b in zip(argv, argv[1:]) if a in ("-h", "--host")]
        hosts += [a.split("=", 1)[1] for a in argv if a and a.startswith("--host=")]
        if hosts != [LOOPBACK]:
            problems.append(f"{where}:{node.lineno}: starts the UI with host {hosts or 'unset'}, "
                            f"not {LOOPBACK}")
    return problems, found


def test_the_makefile_and_the_docs_start_the_ui_on_loopback_only():
    makefile = (ROOT / "Makefile").read_text()
    dev = re.search(r"^dev:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert dev and UI_COMMAND.search(dev.group(1)), "make dev no longer starts the UI?"
    problems = []
    for path in tracked_files():
        if path.suffix in (".md", ".sh", ".yaml", ".yml", ".txt", "") or path.name == "Makefile":
            problems += ui_command_problems(path.read_text(errors="replace"),
                                            str(path.relative_to(ROOT)))
    assert not problems, "\n".join(problems)


def test_the_package_starts_the_ui_on_loopback_only():
    problems, found = [], 0
    for path in package_sources():
        more, n = webserver_argv_problems(path.read_text(), str(path.relative_to(ROOT)))
        problems += more
        found += n
    assert found >= 1, "the scale-out cluster's webserver command was not found"
    assert not problems, "\n".join(problems)


def test_the_ui_checks_report_a_command_without_loopback():
    assert ui_command_problems("dev:\n\tdagster dev -m gridassets.definitions --port 3000\n", "M")
    assert ui_command_problems(f"dagster-webserver -h {ANY_ADDRESS} -p 3000", "M")
    assert ui_command_problems("dagster dev \\\n  --host 10.0.0.5 -m x", "M")
    assert not ui_command_problems("dagster dev -m x --host 127.0.0.1 --port 3000", "M")
    assert not ui_command_problems("The UI (dagster-webserver) runs anywhere", "M")
    bad = ('import sys\nrun([bindir / "dagster-webserver", "-p", "3000"])\n'
           f'run(["dagster", "dev", "--host", "{ANY_ADDRESS}"])\n')
    problems, found = webserver_argv_problems(bad, "x.py")
    assert found == 2 and len(problems) == 2
    good = 'run([str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1"])'
    assert webserver_argv_problems(good, "x.py") == ([], 1)


# --------------------------------------------------------------------------------------------
# 2. No secret in the repository

PLACEHOLDER = re.compile(
    r"^(?:|\*+|x+|\.\.\.|<[^>]*>|\$\{?[A-Za-z_][\w]*\}?|\{[^}]*\}|%\(?\w*\)?s|"
    r"(?:change|replace)[-_]?me|example|placeholder|redacted|none|null|true|false|secret|"
    r"password|token|your[-_\w]*)$", re.I)
SECRET_PATTERNS = {
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Slack token": re.compile(r"\bxox[abeoprs]-[0-9A-Za-z-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/\w+"),
    "GitHub token": re.compile(r"\b(?:gh[opsur]_[0-9A-Za-z]{30,}|github_pat_\w{30,})"),
}
# `password = "..."`, `token: '...'`, `secret=...` with a literal value (quoted, or bare in a
# config line); a value naming a variable or a placeholder is not a secret.
ASSIGNED_SECRET = re.compile(
    r"""(?ix)(?<![a-z])(?:password|passwd|pwd|secret|token|api[-_]?key|access[-_]?key)(?![a-z0-9])
        ["']?\s*[:=]\s*
        (?:(["'])(?P<quoted>[^"'\n]*)\1|(?P<bare>[^\s"',;)]+))""")
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<user>[^\s:/@'\"]+):(?P<pw>[^\s@/'\"]+)@"
                             r"(?P<host>[^\s/:'\"]+)", re.I)
# Credentials in URLs that are allowed, by exact text: none today. A test that starts a local
# server with a throwaway user (created by the test itself, on 127.0.0.1) would be listed here,
# with the reason.
ALLOWED_URL_CREDENTIALS: set[str] = set()


# Text (lower-cased) that one of the patterns above needs: a line without any is not matched, so
# that the scan of every tracked file stays well under 2 s.
NEEDED = ("private key", "akia", "asia", "xox", "hooks.slack", "gh", "passw", "pwd", "secret",
          "token", "key", "@")


def _may_hold_secret(text: str) -> bool:
    low = text.lower()
    return any(word in low for word in NEEDED)


def secret_findings(text: str, where: str) -> list[str]:
    """Every secret-looking text in `text`, as `where:line: kind`."""
    findings = []
    if not _may_hold_secret(text):
        return findings
    for number, line in enumerate(text.splitlines(), 1):
        if not _may_hold_secret(line):
            continue
        for kind, pattern in SECRET_PATTERNS.items():
            if pattern.search(line):
                findings.append(f"{where}:{number}: {kind}")
        for match in ASSIGNED_SECRET.finditer(line):
            value = match.group("quoted") if match.group("quoted") is not None \
                else match.group("bare")
            literal = match.group("quoted") is not None or not where.endswith(".py")
            # A bare word in Python is a variable; `{x}` or `$X` is filled in elsewhere.
            if literal and len(value) >= 4 and not PLACEHOLDER.match(value) \
                    and not re.search(r"[{}$]", value):
                findings.append(f"{where}:{number}: {match.group(0).split('=')[0].split(':')[0]}"
                                " with a literal value")
        for match in URL_CREDENTIALS.finditer(line):
            if match.group(0) in ALLOWED_URL_CREDENTIALS or PLACEHOLDER.match(match.group("pw")):
                continue
            findings.append(f"{where}:{number}: a URL with user:password@ credentials")
    return findings


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


def test_no_secret_in_any_tracked_file():
    findings = []
    for path in tracked_files():
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted in the working tree, not yet committed
            continue
        if _is_binary(data):
            continue
        findings += secret_findings(data.decode("utf-8", "replace"), str(path.relative_to(ROOT)))
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize("planted, kind", [
    ("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow...", "private key block"),
    ("-----BEGIN OPENSSH " + "PRIVATE KEY-----", "private key block"),
    ("aws_key = " + "AKIA" + "Q7XJ2M4K9R8TZP3W", "AWS access key id"),
    ("SLACK=" + "xoxb" + "-123456789012-abcdefghijkl", "Slack token"),
    ("url: https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/" + "a1b2c3d4e5", "Slack webhook"),
    ("gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "GitHub token"),
    ("db_pass" + 'word = "Tr0ub4dor&3"', "with a literal value"),
    ("pass" + "wd: hunter22", "with a literal value"),
    ("sec" + "ret='s3cr3t-value'", "with a literal value"),
    ("tok" + "en=abcd1234efgh", "with a literal value"),
    ("postgresql://grid:" + "s3cret@db.example.com/grid", "user:password@"),
])
def test_the_secret_scan_finds_each_kind(planted, kind):
    findings = secret_findings(f"line one\n{planted}\n", "planted.yaml")
    assert any(kind in f and f.startswith("planted.yaml:2:") for f in findings), findings


@pytest.mark.parametrize("harmless", [
    'password = os.environ["GRIDASSETS_DB_PASSWORD"]',
    "token=token, secret=settings.secret",
    'password = "<your password>"',
    "password: ${DB_PASSWORD}",
    "postgresql+psycopg2://gridassets@127.0.0.1:5432/gridassets",
    "tmp = path.with_name(f'.{name}.{secrets.token_hex(6)}.tmp')",
])
def test_the_secret_scan_ignores_references_and_placeholders(harmless):
    assert secret_findings(harmless, "code.py") == []


# --------------------------------------------------------------------------------------------
# 4. No value is ever formatted into SQL

# What makes a string SQL text: statement shapes, not single words, so that messages such as
# "select a day" or "where every output went" are not taken for SQL.
SQL_TEXT = re.compile(
    r"""(?ix)
      \bselect\b[\s\S]*\bfrom\b
    | \binsert\s+(?:or\s+\w+\s+)?into\b
    | \bdelete\s+from\b
    | \bupdate\s+[\w."{}]+\s+set\b
    | \bcreate\s+(?:or\s+replace\s+)?(?:temp\w*\s+)?(?:table|view|schema|index|macro|secret|sequence)\b
    | \bdrop\s+(?:table|view|schema|index)\b
    | \balter\s+table\b
    | \bcopy\s+(?:\(|[\w."{}]+\s+(?:to|from)\s*['{])
    | \battach\s+(?:database\s+)?(?:if\s+not\s+exists\s+)?['{]
    | \bwhere\s+[\w."{}()]+\s*(?:=|<|>|!=|\bin\s*\(|\bis\s+(?:not\s+)?null\b|\blike\b|\bbetween\b)
    """)
# The project's identifier helpers: `warehouse.qualified` (schema.table of a table of the graph),
# `copy._quoted` (a double-quoted column name), `Partitioning.key_sql` (the partition key
# expression of a table's partition column).
SAFE_CALLS = {"qualified", "_quoted", "key_sql"}
# The mark, as a Python comment after the line's code or, inside a multi-line SQL string, as an
# SQL comment (`-- sql-identifier: ...`).
MARK = re.compile(r"(?:#|--)\s*sql-identifier:\s*\S")
UPPER = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_constant(expr: ast.AST) -> bool:
    """An expression of code constants only: module-level UPPER_CASE names (`HORIZON_DAYS + 1`,
    `", ".join(FORECAST_COLUMNS)`, `models.HORIZON_DAYS`), and items looked up in one
    (`SCHEMA_OF[table]`: whatever the key, the value is one the code wrote)."""
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Name):
        return bool(UPPER.match(expr.id))
    if isinstance(expr, ast.Attribute):
        return bool(UPPER.match(expr.attr)) or _is_constant(expr.value)
    if isinstance(expr, ast.Subscript):
        return _is_constant(expr.value)
    if isinstance(expr, ast.BinOp):
        return _is_constant(expr.left) and _is_constant(expr.right)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        return (_is_constant(expr.func.value) and not expr.keywords
                and all(_is_constant(a) for a in expr.args))
    return False


def _is_placeholders(expr: ast.AST) -> bool:
    """`", ".join("?" for _ in values)` or `", ".join(["?"] * n)`: only placeholders."""
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "join" and len(expr.args) == 1):
        return False
    arg = expr.args[0]
    if isinstance(arg, (ast.GeneratorExp, ast.ListComp)):
        arg = arg.elt
    elif isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult):
        arg = arg.left.elts[0] if isinstance(arg.left, ast.List) and arg.left.elts else arg.left
    return isinstance(arg, ast.Constant) and arg.value == "?"


def _is_safe(expr: ast.AST, lines: list[str]) -> bool:
    if isinstance(expr, ast.Call):
        func = expr.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in SAFE_CALLS:
            return True
    if _is_constant(expr) or _is_placeholders(expr):
        return True
    return any(MARK.search(lines[n - 1]) for n in range(expr.lineno, expr.end_lineno + 1))


def sql_interpolations(source: str, where: str) -> list[str]:
    """Every value interpolated into SQL text in Python `source` (by an f-string, `.format` or
    `%`) that is not a known-safe identifier, as `where:line: kind {expression}`."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []

    def check(kind: str, expr: ast.AST) -> None:
        if not _is_safe(expr, lines):
            found.append(f"{where}:{expr.lineno}: {kind} {{{ast.unparse(expr)}}}")

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and SQL_TEXT.search(_literal_text(node)):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    check("f-string", value.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "format"):
            text = _literal_text(node.func.value)
            if text and SQL_TEXT.search(text):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    check(".format", arg)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            text = _literal_text(node.left)
            if text and SQL_TEXT.search(text):
                args = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
                for arg in args:
                    check("%", arg)
    return sorted(found, key=lambda f: int(f.split(":")[1]))


def test_no_value_is_formatted_into_sql():
    found = []
    for path in package_sources():
        found += sql_interpolations(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, (
        "values formatted into SQL text: bind them as parameters (`?`), or, for an identifier "
        "that comes from code, mark the line with `# sql-identifier: <why>`:\n" + "\n".join(found))


PLANTED_SQL = '''
def bad(con, value, day, table):
    con.execute(f"select * from t where id = '{value}'")
    con.execute("delete from t where day = '{}'".format(day))
    con.execute("select * from t where id = %s" % value)
    con.execute("insert into t values ('%s', '%s')" % (value, day))
    con.execute(f"update {table} set x = 1 where id = ?", [value])


def good(con, value, table):
    con.execute(f"select * from {qualified('circuits')} where id = ?", [value])
    con.execute(f"select * from {SCHEMA}.t where id in ({', '.join('?' for _ in value)})", value)
    con.execute(f"select {column} from t where id = ?", [value])  # sql-identifier: from code
    print(f"use --select transformer_telemetry for {value}")
'''


def test_the_sql_scan_reports_planted_interpolations():
    found = sql_interpolations(PLANTED_SQL, "planted.py")
    assert found == [
        "planted.py:3: f-string {value}",
        "planted.py:4: .format {day}",
        "planted.py:5: % {value}",
        "planted.py:6: % {value}",
        "planted.py:6: % {day}",
        "planted.py:7: f-string {table}",
    ]


# --------------------------------------------------------------------------------------------
# 5. Landing and alert inputs bounded in size

DAY = date(2025, 6, 1)


def test_landing_size_limits_are_generous_for_a_large_utility():
    # 200,000 transformers x 24 hours is about 400 MB of CSV a day.
    assert landing.MAX_DAILY_FILE_BYTES >= 5 * 400 * 1000**2
    assert landing.MAX_REGISTRY_FILE_BYTES >= 100 * 1000**2
    assert MAX_FILE_BYTES == 10 * 1024**2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_daily_landing_file_over_the_limit_fails_before_it_is_read(tmp_path, monkeypatch,
                                                                     suffix):
    path = tmp_path / "feeder_load" / f"2025-06-01{suffix}"
    path.parent.mkdir()
    path.write_bytes(b"circuit_id,timestamp,load_mw\n" + b"C1,2025-06-01T00:00:00Z,3.5\n" * 10)
    size = path.stat().st_size
    monkeypatch.setattr(landing, "MAX_DAILY_FILE_BYTES", size - 1)
    opened = []
    monkeypatch.setattr(landing, "_read_raw", lambda *a, **k: opened.append(a))
    with pytest.raises(landing.LandingError) as caught:
        landing.read_daily(FEEDER_LOAD, tmp_path, DAY)
    message = str(caught.value)
    assert caught.value.path == path and not opened
    assert f"is {size:,} bytes, larger than the limit of {size - 1:,} bytes" in message
    assert "MAX_DAILY_FILE_BYTES" in message and str(path) in message


def test_a_registry_file_over_the_limit_fails_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "circuits.csv"
    path.write_text("circuit_id\nC1\n")
    monkeypatch.setattr(landing, "MAX_REGISTRY_FILE_BYTES", 4)
    with pytest.raises(landing.LandingError, match="MAX_REGISTRY_FILE_BYTES") as caught:
        landing.read_registry(CIRCUITS, tmp_path)
    assert caught.value.path == path
    assert "larger than the limit of 4 bytes" in str(caught.value)


def test_a_landing_file_within_the_limit_is_read(tmp_path, monkeypatch):
    path = tmp_path / "feeder_load" / "2025-06-01.csv"
    path.parent.mkdir()
    path.write_text("circuit_id,timestamp,load_mw\nC1,2025-06-01T00:00:00Z,3.5\n")
    monkeypatch.setattr(landing, "MAX_DAILY_FILE_BYTES", path.stat().st_size)
    assert len(landing.read_daily(FEEDER_LOAD, tmp_path, DAY)) == 1
