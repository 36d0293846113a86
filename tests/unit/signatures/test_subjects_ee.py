"""Estonian subject kinds: ee-ik (isikukood, personal code) and ee-rg (registrikood, registry code),
and the person / entity kind helpers used by delegations, registry payloads and roles.

Vectors: 37605030299 is the well-known example (e.g. the Estonia TIN guide at
taxdo.com/resources/global-tax-id-validation-guide/estonia); the other personal codes are
python-stdnum's published list (tests/test_ee_ik.doctest) plus 48105215716
(github.com/OkramL/PersonalCode README). The registry codes are python-stdnum's list "found online"
(tests/test_ee_registrikood.doctest) plus 12213008
(github.com/raigu/company-registry-code-validation README). Codes marked "constructed" were built
by hand to reach a branch no published code reaches; the arithmetic is in the comment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.auth import AuthError, Role, verify_subject_for_roles
from signatures.canonical import JsonValue
from signatures.client import build_envelope
from signatures.envelope import (
    ENTITY_KINDS,
    PERSON_KINDS,
    RULE_INVALID_CHECK_DIGIT,
    RULE_INVALID_IDENTIFIER,
    RULE_INVALID_SUBJECT,
    SubjectKind,
    parse_envelope,
    parse_subject,
)
from signatures.errors import DelegationError, EnvelopeError, SubjectError
from signatures.keys import Delegation
from signatures.registry_fields import RULE_WRONG_SUBJECT_KIND
from signatures.registry_payloads import DELEGATION_GRANT, parse_delegation_grant


def codes(text: str) -> list[str]:
    return text.split()


WIKIPEDIA_EXAMPLE = "37605030299"  # a man born 3 May 1976
STDNUM_PERSONAL_CODES = codes("""
    36805280109 16805280107 51205280105 81205280108 46805280103
    36205030034 36606130166 38002090113 36703010079 36412140053 37105250048 35806110178
    38411280151 38004160054 37406220030 37207010076 46104090101 47306160017 35712020095
    35512240278 37111070056 36003050128 34508136020 37112300117 37205120111 36708120106
    36204130100 36404240119 37609300174 38407170099 35903140121 36912050058 36706060097
    37909180161 37210220129 35803140053 37709190107 36306200109 36208130099 37611280079
    35806190146 44909210102 37104020141 35907150159 36412100145 49105080018 37406110083
    36304020091 37106220087 34706045216 37503240119 38310150127 46708270050
""")
# Both passes leave 10, so the check digit is 0 (constructed): 3·1 + 7·2 + 6·3 + 0·4 + 5·5 +
# 0·6 + 3·7 + 0·8 + 9·9 + 2·1 = 164 ≡ 10 (mod 11); 3·3 + 7·4 + 6·5 + 0·6 + 5·7 + 0·8 + 3·9 +
# 0·1 + 9·2 + 2·3 = 153 ≡ 10.
BOTH_PASSES_TEN = "37605030920"
# 29 February in leap years, in the 1800s, 1900s and 2000s (constructed). 1880-02-29:
# 1+16+0+0+10+12+63+0+0+1 = 103 ≡ 4. 1996-02-29: 4+18+18+0+10+12+63+0+0+1 = 126 ≡ 5.
# 2000-02-29: 5+0+0+0+10+12+63+0+0+1 = 91 ≡ 3.
LEAP_DAYS = ["18002290014", "49602290015", "50002290013"]
PERSONAL_CODES = [
    WIKIPEDIA_EXAMPLE,
    "48105215716",
    *STDNUM_PERSONAL_CODES,
    BOTH_PASSES_TEN,
    *LEAP_DAYS,
]
# No one-digit change of these is a well-formed code (checked below); of the others some is.
NO_TWIN_PERSONAL_CODES = ["36205030034", "36606130166", "38411280151", "37105250048"]

STDNUM_REGISTRY_CODES = codes("""
    10000024 10000030 10000047 10000171 10254782 10324169 10491045 10591640 10722527 10732046
    10953764 11041309 11104323 11126796 11129553 11405303 11426771 11456861 11521759 11559868
    11664625 11910691 11984324 12073932 12111472 12202654 12493640 70000823 70002420 70004264
    70005542 75000561 75000667 75002287 75002884 75005334 75005392 75005618 75006820 75007267
    75008769 75010476 75012952 75015580 75016177 75016993 75017857 75018325 75018495 75018822
    75020670 75021043 75021304 75021617 75024018 75024509 75024567 75025153 75025762 75026968
    75027494 75033069 80026261 80033947 80040433 80041421 80046097 80052459 80078915 80079820
    80093530 80095629 80107858 80112196 80132454 80173430 80186390 80196158 80213520 80234120
    80287895 80291371 80293625 80302784 80309332 80314929 80319075 80336642 90004740 90004817
    90006006 90006549 90006822 90006845 90007247 90007796 90008287 90009370 90010671 90010887
""")
# Both passes leave 10 (constructed): 1·1 + 6·6 + 4·7 = 65 ≡ 10; 1·3 + 6·8 + 4·9 = 87 ≡ 10.
REGISTRY_BOTH_PASSES_TEN = "10000640"
REGISTRY_CODES = ["12213008", *STDNUM_REGISTRY_CODES, REGISTRY_BOTH_PASSES_TEN]
NO_TWIN_REGISTRY_CODES = ["10000024", "10000047", "10324169", "10491045", "80026261"]

FIRST_PASS_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 1)


def one_digit_changes(digits: str) -> list[str]:
    return [
        digits[:index] + other + digits[index + 1 :]
        for index in range(len(digits))
        for other in "0123456789"
        if other != digits[index]
    ]


def accepts(text: str) -> bool:
    try:
        parse_subject(text)
    except SubjectError:
        return False
    return True


def first_pass_remainder(data: str) -> int:
    pairs = zip(data, FIRST_PASS_WEIGHTS[: len(data)], strict=True)
    return sum(int(digit) * weight for digit, weight in pairs) % 11


# --- ee-ik ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", PERSONAL_CODES)
def test_valid_personal_codes(code: str) -> None:
    subject = parse_subject(f"ee-ik:{code}")
    assert (subject.kind, subject.identifier) == (SubjectKind.EE_PERSON, code)
    assert str(subject) == f"ee-ik:{code}"


def test_the_second_pass_decides_for_some_published_codes() -> None:
    # 46805280103: first pass 4+12+24+0+25+12+56+0+9+0 = 142 ≡ 10; second 12+24+40+0+35+16+72+0+2+0
    # = 201 ≡ 3, the check digit. Its first-pass twin ending in 0 is refused.
    assert accepts("ee-ik:46805280103")
    assert first_pass_remainder("4680528010") == 10
    with pytest.raises(SubjectError) as caught:
        parse_subject("ee-ik:46805280100")
    assert caught.value.rule == RULE_INVALID_CHECK_DIGIT


@pytest.mark.parametrize("code", NO_TWIN_PERSONAL_CODES)
def test_every_one_digit_change_refused(code: str) -> None:
    accepted = [changed for changed in one_digit_changes(code) if accepts(f"ee-ik:{changed}")]
    assert accepted == []


@pytest.mark.parametrize("code", PERSONAL_CODES)
def test_one_digit_changes_pass_only_through_the_second_pass(code: str) -> None:
    # A one-digit change moves the first-pass sum by weight × delta, never a multiple of 11: the
    # only changes that can keep the check digit are those where one of the two codes needs the
    # second pass (first pass remainder 10). Anything else accepted would be a bug.
    for changed in one_digit_changes(code):
        if accepts(f"ee-ik:{changed}"):
            remainders = {first_pass_remainder(code[:10]), first_pass_remainder(changed[:10])}
            assert 10 in remainders, changed


def test_a_known_twin_is_accepted_as_the_standard_says() -> None:
    # 47605030299 (a woman born 3 May 1976): first pass 4+14+18+0+25+0+21+0+18+9 = 109 ≡ 10; second
    # 12+28+30+0+35+0+27+0+4+27 = 163 ≡ 9, the same check digit as 37605030299. The check digit
    # cannot tell them apart; only the population register can.
    assert accepts("ee-ik:47605030299")


BAD_DATES = [
    pytest.param("38102290106", id="1981-02-29"),  # python-stdnum's "non-existing date"
    pytest.param("30002290011", id="1900-02-29_century_not_leap"),
    pytest.param("10002290017", id="1800-02-29_century_not_leap"),
    pytest.param("70002290015", id="2100-02-29_century_not_leap"),
    pytest.param("89902290017", id="2199-02-29"),
    pytest.param("37613010017", id="month_13"),
    pytest.param("37600030012", id="month_00"),
    pytest.param("37604310014", id="april_31"),
    pytest.param("37605000016", id="day_00"),
]


@pytest.mark.parametrize("code", BAD_DATES)
def test_bad_birth_dates_refused(code: str) -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject(f"ee-ik:{code}")
    assert caught.value.rule == RULE_INVALID_IDENTIFIER
    assert code not in str(caught.value)


BAD_SHAPES = [
    pytest.param("06805280106", id="century_digit_0"),  # python-stdnum's invalid first digit
    pytest.param("96805280109", id="century_digit_9"),
    pytest.param("3760503029", id="10_digits"),
    pytest.param("376050302999", id="12_digits"),
    pytest.param("", id="empty"),
    pytest.param("3760503029a", id="letter"),
    pytest.param("۳۷۶۰۵۰۳۰۲۹۹", id="persian_digits"),
    pytest.param(" 37605030299", id="leading_space"),
    pytest.param("37605030299:", id="trailing_colon"),
]


@pytest.mark.parametrize("code", BAD_SHAPES)
def test_bad_shapes_refused(code: str) -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject(f"ee-ik:{code}")
    assert caught.value.rule == RULE_INVALID_SUBJECT


def test_wrong_check_digit_refused_without_echoing_the_code() -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject("ee-ik:37605030298")
    assert caught.value.rule == RULE_INVALID_CHECK_DIGIT
    assert "3760503029" not in str(caught.value)


# --- ee-rg ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", REGISTRY_CODES)
def test_valid_registry_codes(code: str) -> None:
    subject = parse_subject(f"ee-rg:{code}")
    assert (subject.kind, subject.identifier) == (SubjectKind.EE_ENTITY, code)


def test_registry_code_second_pass() -> None:
    # 75006820: 7+10+0+0+30+48+14 = 109 ≡ 10; 21+20+0+0+42+64+18 = 165 ≡ 0, the check digit.
    assert accepts("ee-rg:75006820")
    assert not accepts("ee-rg:75006829")  # the first pass's 10 is never a digit


@pytest.mark.parametrize("code", NO_TWIN_REGISTRY_CODES)
def test_every_one_digit_change_of_a_registry_code_refused(code: str) -> None:
    assert [c for c in one_digit_changes(code) if accepts(f"ee-rg:{c}")] == []


@pytest.mark.parametrize("code", REGISTRY_CODES)
def test_registry_code_changes_pass_only_through_the_second_pass(code: str) -> None:
    for changed in one_digit_changes(code):
        if accepts(f"ee-rg:{changed}"):
            remainders = {first_pass_remainder(code[:7]), first_pass_remainder(changed[:7])}
            assert 10 in remainders, changed


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        pytest.param("10000025", RULE_INVALID_CHECK_DIGIT, id="check_digit"),
        pytest.param("20000025", RULE_INVALID_SUBJECT, id="first_digit_2"),  # 2 + 14 ≡ 5
        pytest.param("00000000", RULE_INVALID_SUBJECT, id="first_digit_0"),
        pytest.param("60000064", RULE_INVALID_SUBJECT, id="first_digit_6"),  # 6 + 42 ≡ 4
        pytest.param("1000002", RULE_INVALID_SUBJECT, id="7_digits"),
        pytest.param("100000244", RULE_INVALID_SUBJECT, id="9_digits"),
        pytest.param("1000002x", RULE_INVALID_SUBJECT, id="letter"),
        pytest.param("37605030299", RULE_INVALID_SUBJECT, id="a_personal_code"),
    ],
)
def test_bad_registry_codes_refused(code: str, rule: str) -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject(f"ee-rg:{code}")
    assert caught.value.rule == rule


def test_a_registry_code_is_not_a_personal_code() -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject("ee-ik:10000024")
    assert caught.value.rule == RULE_INVALID_SUBJECT


# --- person and entity kinds, and where they are used -------------------------------------------


def test_person_and_entity_kinds() -> None:
    assert {k for k in SubjectKind if k.is_person()} == {"ir-nid", "ee-ik"} == PERSON_KINDS
    assert {k for k in SubjectKind if k.is_entity()} == {"ir-lid", "ee-rg"} == ENTITY_KINDS
    assert not SubjectKind.AGENCY.is_person() and not SubjectKind.AGENCY.is_entity()
    assert SubjectKind.is_person(SubjectKind.EE_PERSON)  # also callable as SubjectKind.is_person(k)


def test_unknown_kind_message_lists_every_kind() -> None:
    with pytest.raises(SubjectError) as caught:
        parse_subject("ee-xx:37605030299")
    assert caught.value.rule == RULE_INVALID_SUBJECT
    for kind in SubjectKind:
        assert kind.value in str(caught.value)


CREATED = datetime(2025, 3, 21, 8, 30, tzinfo=UTC)
EE_PERSON = f"ee-ik:{WIKIPEDIA_EXAMPLE}"
EE_COMPANY = "ee-rg:12213008"


def test_envelope_with_estonian_signer_and_entity() -> None:
    value = build_envelope(
        type="tax.return.corporate",
        version=1,
        signer=EE_PERSON,
        on_behalf_of=EE_COMPANY,
        payload={},
        created_at=CREATED,
    )
    envelope = parse_envelope(value)
    assert envelope.signer.kind is SubjectKind.EE_PERSON
    assert envelope.on_behalf_of is not None and envelope.on_behalf_of.kind is SubjectKind.EE_ENTITY


@pytest.mark.parametrize(
    ("grantor", "delegate"),
    [(EE_COMPANY, EE_PERSON), ("ir-lid:10380284790", EE_PERSON), (EE_COMPANY, "ir-nid:0499370899")],
)
def test_delegation_between_any_entity_and_any_person(grantor: str, delegate: str) -> None:
    delegation = Delegation(
        grantor=grantor,
        delegate=delegate,
        types=frozenset({"tax.*"}),
        granted_at=CREATED,
        not_after=CREATED + timedelta(days=30),
    )
    assert delegation.is_valid_at(at=CREATED, transaction_type="tax.return.corporate")


@pytest.mark.parametrize(
    ("grantor", "delegate", "field"),
    [(EE_PERSON, EE_PERSON, "grantor"), (EE_COMPANY, EE_COMPANY, "delegate")],
)
def test_delegation_kinds_refused(grantor: str, delegate: str, field: str) -> None:
    with pytest.raises(DelegationError) as caught:
        Delegation(
            grantor=grantor,
            delegate=delegate,
            types=frozenset({"tax.*"}),
            granted_at=CREATED,
            not_after=CREATED + timedelta(days=30),
        )
    assert caught.value.field == field


def _grant(signer: str, delegate: str) -> None:
    payload: dict[str, JsonValue] = {
        "delegate": delegate,
        "types": ["tax.*"],
        "not_after": "2026-03-21T08:30:00Z",
    }
    value = build_envelope(
        type=DELEGATION_GRANT, version=1, signer=signer, payload=payload, created_at=CREATED
    )
    parse_delegation_grant(parse_envelope(value))


def test_delegation_grant_payload_by_estonian_entity() -> None:
    _grant(EE_COMPANY, EE_PERSON)
    with pytest.raises(EnvelopeError) as caught:
        _grant(EE_PERSON, EE_COMPANY)
    assert {(e.pointer, e.rule) for e in caught.value.errors} == {
        ("/signer", RULE_WRONG_SUBJECT_KIND),
        ("/payload/delegate", RULE_WRONG_SUBJECT_KIND),
    }


def test_roles_accept_estonian_subjects() -> None:
    verify_subject_for_roles(EE_PERSON, frozenset({Role.CITIZEN, Role.BUSINESS}))
    verify_subject_for_roles(EE_COMPANY, frozenset({Role.BUSINESS}))
    with pytest.raises(AuthError):
        verify_subject_for_roles(EE_COMPANY, frozenset({Role.CITIZEN}))
