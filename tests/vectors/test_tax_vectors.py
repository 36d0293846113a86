"""Known-answer tax vectors: tests/vectors/tax/<jurisdiction>-<period>-<kind>.yaml (docs/TAX.md).

Each file names a shipped pack, a period and a return kind, and lists cases: a payload exactly as
a filer would sign it, the expected tax (Computation.tax_minor), and optionally the expected
amounts of named trace lines and the exact set of issue codes. Figures are worked out by hand
from the law (each case says how in a comment), never copied from the engine.

One pytest case per vector case, with id "<file>::<name>". A case without `issues` must be
accepted (no issue of severity error); unverified-parameter warnings are allowed there.
The runner's own checks are tested at the end, on copies in tmp_path: a wrong expectation fails.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tax import returns
from tax.engine import compute_return
from tax.errors import TaxFieldError
from tax.returns import parse_return
from tax.rulepack import RulePack, load_pack, shipped_packs
from tax.trace import Computation

VECTOR_DIR = Path(__file__).parent / "tax"
FILE_KEYS = {"pack", "period", "kind", "basis", "cases"}
CASE_KEYS = {"name", "payload", "tax_minor"}
OPTIONAL_CASE_KEYS = {"lines", "issues"}
_NAME = re.compile(r"[a-z][a-z0-9_]*")

Vector = tuple[str, dict[str, object], dict[str, object]]  # (id, file document, case)


def load_vectors(folder: Path) -> list[Vector]:
    """Every case of every *.yaml file in folder, checked for shape.

    Raises AssertionError naming the file (and case) when a file is malformed."""
    vectors: list[Vector] = []
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(doc, dict), f"{path.name}: a vector file is a mapping"
        assert set(doc) == FILE_KEYS, f"{path.name}: keys are exactly {sorted(FILE_KEYS)}"
        for key in ("pack", "period", "kind", "basis"):
            # An unquoted period (1403) would be read as an integer: the file must quote it.
            assert isinstance(doc[key], str) and doc[key], (
                f"{path.name}: {key} is a non-empty string"
            )
        cases = doc["cases"]
        assert isinstance(cases, list) and cases, f"{path.name}: cases is a non-empty list"
        names: set[str] = set()
        for case in cases:
            assert isinstance(case, dict), f"{path.name}: each case is a mapping"
            name = case.get("name")
            assert isinstance(name, str) and _NAME.fullmatch(name), f"{path.name}: snake_case name"
            assert name not in names, f"{path.name}: case {name} is listed twice"
            names.add(name)
            keys = set(case)
            assert CASE_KEYS <= keys <= CASE_KEYS | OPTIONAL_CASE_KEYS, (
                f"{path.name}::{name}: keys {sorted(keys)}"
            )
            vectors.append((f"{path.name}::{name}", doc, case))
    return vectors


def check_case(
    doc: Mapping[str, object], case: Mapping[str, object], *, pack: RulePack
) -> Computation:
    """Parse the case's payload, compute it the day after its period ends, and compare.

    Raises AssertionError on any difference (tax, a named line, the issue codes)."""
    payload = case["payload"]
    assert isinstance(payload, dict), "payload is a mapping"
    assert payload.get("jurisdiction") == doc["pack"], (
        "the payload's jurisdiction is the file's pack"
    )
    assert payload.get("period") == doc["period"], "the payload's period is the file's period"
    assert "amends" not in payload, "vectors hold first filings: no amends"
    kind = doc["kind"]
    assert isinstance(kind, str)
    try:
        data = parse_return(payload, kind=kind)
    except TaxFieldError as error:
        raise AssertionError(
            f"the payload is refused: {[(e.pointer, e.rule) for e in error.errors]}"
        ) from None
    computation = compute_return(pack, data, today=data.period.end + timedelta(days=1))
    trace = {line.code: line.amount_minor for line in computation.lines}
    codes = sorted({issue.code for issue in computation.issues})
    assert computation.tax_minor == case["tax_minor"], (
        f"tax_minor {computation.tax_minor} != expected {case['tax_minor']}; "
        f"trace {trace}; issues {codes}"
    )
    lines = case.get("lines", {})
    assert isinstance(lines, dict), "lines is a mapping of line code to amount"
    for code, expected in lines.items():
        assert code in trace, f"no line {code} in the trace {sorted(trace)}"
        assert trace[code] == expected, f"line {code}: {trace[code]} != expected {expected}"
    if "issues" in case:
        expected_issues = case["issues"]
        assert isinstance(expected_issues, list), "issues is a list of codes"
        assert codes == sorted(set(expected_issues)), (
            f"issues {codes} != expected {expected_issues}"
        )
    else:
        assert computation.accepted, (
            f"rejected: {[(i.code, i.pointer) for i in computation.issues]}"
        )
    return computation


SHIPPED = load_vectors(VECTOR_DIR)


@pytest.mark.parametrize(
    ("vector_id", "doc", "case"), SHIPPED, ids=[vector[0] for vector in SHIPPED]
)
def test_vector(vector_id: str, doc: dict[str, object], case: dict[str, object]) -> None:
    pack_name = doc["pack"]
    assert isinstance(pack_name, str)
    check_case(doc, case, pack=shipped_packs()[pack_name])


def test_vectors_are_shipped_for_every_pack() -> None:
    packs_with_vectors = {doc["pack"] for _, doc, _ in SHIPPED}
    assert packs_with_vectors == set(shipped_packs()), (
        "every shipped pack needs known-answer vectors"
    )


# --- the runner's own checks ---------------------------------------------------------------------

PACK_TOML = """
[pack]
jurisdiction = "qz"
title = "Runner test pack"
revision = 1
currency = "EUR"
calendar = "gregorian"
tax_agency = "agency:test-tax"
weekend = ["sunday"]
rounding = "down"

[sources.t]
citation = "test"

[returns.personal]
period = "year"
subjects = ["ee-ik"]
first_period = "2020"
deadline = "deadline.personal"
payment_deadline = "deadline.personal"

[params."personal.brackets"]
kind = "brackets"
[[params."personal.brackets".values]]
since = "2020-01-01"
value = [{ up_to_minor = 1000, rate = "0.10" }, { rate = "0.30" }]
source = "t"
status = "enacted"

[params."deadline.personal"]
kind = "deadline"
[[params."deadline.personal".values]]
since = "2020-01-01"
value = { months_after_period_end = 3, day = 0 }
source = "t"
status = "enacted"
"""

VECTOR_YAML = """
pack: qz
period: "2024"
kind: personal
basis: "The test pack: 10 % up to 1,000, 30 % above; no exemption."
cases:
  - name: above_the_first_band
    payload: { jurisdiction: qz, period: "2024", other_income_minor: 1500 }
    # 10 % × 1,000 + 30 % × 500 = 250
    tax_minor: 250
    lines: { "general.tax.band.1": 100, "general.tax.band.2": 150 }
  - name: a_deduction_the_pack_lacks
    payload: { jurisdiction: qz, period: "2024", deductions: [{ code: gifts, amount_minor: 5 }] }
    tax_minor: 0
    issues: ["deduction_not_allowed"]
"""


@pytest.fixture
def runner_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RulePack:
    path = tmp_path / "qz.toml"
    path.write_text(PACK_TOML, encoding="utf-8")
    pack = load_pack(path)
    monkeypatch.setattr(returns, "pack_for", lambda jurisdiction: pack)
    return pack


def _write(tmp_path: Path, text: str) -> list[Vector]:
    folder = tmp_path / "vectors"
    folder.mkdir(exist_ok=True)
    (folder / "qz-2024-personal.yaml").write_text(text, encoding="utf-8")
    return load_vectors(folder)


def test_the_runner_passes_correct_cases(tmp_path: Path, runner_pack: RulePack) -> None:
    vectors = _write(tmp_path, VECTOR_YAML)
    assert [vector_id for vector_id, _, _ in vectors] == [
        "qz-2024-personal.yaml::above_the_first_band",
        "qz-2024-personal.yaml::a_deduction_the_pack_lacks",
    ]
    for _, doc, case in vectors:
        check_case(doc, case, pack=runner_pack)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("tax_minor: 250", "tax_minor: 251"),  # a wrong tax
        ('"general.tax.band.2": 150', '"general.tax.band.2": 149'),  # a wrong line
        ('"general.tax.band.2": 150', '"general.tax.band.3": 0'),  # a line that does not exist
        ('issues: ["deduction_not_allowed"]', 'issues: ["period_not_ended"]'),  # wrong issues
        ('issues: ["deduction_not_allowed"]', "lines: {}"),  # an expected rejection left out
        ("other_income_minor: 1500 }", "other_income_minor: 1500.0 }"),  # a float amount
        (
            'payload: { jurisdiction: qz, period: "2024", other',
            'payload: { jurisdiction: qz, period: "2023", other',
        ),
    ],
)
def test_the_runner_fails_a_wrong_expectation(
    tmp_path: Path, runner_pack: RulePack, old: str, new: str
) -> None:
    assert old in VECTOR_YAML
    vectors = _write(tmp_path, VECTOR_YAML.replace(old, new, 1))
    failures = 0
    for _, doc, case in vectors:
        try:
            check_case(doc, case, pack=runner_pack)
        except AssertionError:
            failures += 1
    assert failures == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('period: "2024"\nkind', "period: 2024\nkind"),  # an unquoted period
        ("  - name: a_deduction_the_pack_lacks", "  - name: above_the_first_band"),  # twice
        ("  - name: above_the_first_band", "  - name: Above"),  # not snake_case
        ("    tax_minor: 0\n", "    tax_minor: 0\n    expected: 1\n"),  # an unknown key
        ("basis: ", "notes: "),  # a missing key
    ],
)
def test_the_runner_refuses_malformed_files(tmp_path: Path, old: str, new: str) -> None:
    assert old in VECTOR_YAML
    with pytest.raises(AssertionError):
        _write(tmp_path, VECTOR_YAML.replace(old, new, 1))


def test_a_shipped_vector_with_a_wrong_tax_fails(tmp_path: Path) -> None:
    # Each shipped file, copied and with its first case's tax raised by one, must fail.
    for path in sorted(VECTOR_DIR.glob("*.yaml")):
        folder = tmp_path / path.stem
        folder.mkdir()
        shutil.copy(path, folder / path.name)
        doc = yaml.safe_load((folder / path.name).read_text(encoding="utf-8"))
        doc["cases"][0]["tax_minor"] += 1
        (folder / path.name).write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        _, mutated_doc, case = load_vectors(folder)[0]
        pack_name = mutated_doc["pack"]
        assert isinstance(pack_name, str)
        with pytest.raises(AssertionError):
            check_case(mutated_doc, case, pack=shipped_packs()[pack_name])
