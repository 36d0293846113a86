"""The agencies' credential keys (api/licences/issuer_keys.py), on SQLite and PostgreSQL.

Keys are created once, atomically, and reloaded; racing creators end with one key; the key is
registered through the real transaction pipeline exactly once and then published with the
ledger index of its registration.
"""

from __future__ import annotations

import asyncio
import stat
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.keys import CheckpointKeyring, checkpoint_sign_note
from api.licences.issuer_keys import (
    IssuerKeys,
    PipelineRegistrar,
    create_or_load,
    published_key_json,
    verification_keys,
)
from api.problems import Problem
from api.settings import Settings
from api.transactions.registry import default_registry
from api.transactions.service import TransactionService
from ledger import store
from ledger.note import NoteSigner
from licences.credential import CredentialClaims, encode_credential, verify_credential
from signatures import registry_store
from signatures.errors import ServiceKeyError
from tests.db.conftest import ORIGIN

RAHVAR = "agency:rahvar"
ASNAF = "agency:asnaf"
PASSPHRASE = b"correct horse battery staple 42"
RACERS = 8


class CountingRegistrar(PipelineRegistrar):
    """The real registrar, counting what it submits; optionally blind to the registry, as a
    worker is that checked just before another one registered the key."""

    def __init__(self, service: TransactionService, *, blind: bool = False) -> None:
        super().__init__(service)
        self.submitted = 0
        self.challenges = 0
        self.lookups = 0
        self.blind = blind

    def registered_subject(self, kid: str) -> str | None:
        self.lookups += 1
        if self.blind:
            self.blind = False  # blind to the first look only
            return None
        return super().registered_subject(kid)

    def issue_challenge(self, subject: str) -> str:
        self.challenges += 1
        return super().issue_challenge(subject)

    async def submit(self, subject: str, body: bytes) -> None:
        self.submitted += 1
        await super().submit(subject, body)


@pytest.fixture
def service(engine: Engine, signer: NoteSigner) -> TransactionService:
    return TransactionService(
        engine,
        registry=default_registry(),
        origin=ORIGIN,
        sign_note=checkpoint_sign_note(CheckpointKeyring.single(signer)),
    )


def _published(keys: IssuerKeys, engine: Engine, *agencies: str) -> list[object]:
    with engine.connect() as conn:
        return list(keys.published_keys(conn, agencies=agencies))


# --- key files ------------------------------------------------------------------------------------


def test_key_is_created_once_and_reloaded(tmp_path: Path) -> None:
    keys = IssuerKeys(tmp_path / "issuers", passphrase=PASSPHRASE)
    kid, private_key = keys.signing_key(RAHVAR)
    path = tmp_path / "issuers" / "rahvar.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys.signing_key(RAHVAR) == (kid, private_key)  # cached
    again = IssuerKeys(tmp_path / "issuers", passphrase=PASSPHRASE)
    reloaded_kid, reloaded = again.signing_key(RAHVAR)
    assert reloaded_kid == kid
    assert reloaded.private_bytes_raw() == private_key.private_bytes_raw()
    assert path.read_bytes() == pem
    assert sorted(p.name for p in path.parent.iterdir()) == ["rahvar.pem"]  # no temp file left


def test_agencies_have_their_own_keys(tmp_path: Path) -> None:
    keys = IssuerKeys(tmp_path, passphrase=PASSPHRASE)
    assert keys.signing_key(RAHVAR)[0] != keys.signing_key(ASNAF)[0]
    assert keys.existing_key("agency:mrud") is None
    assert not (tmp_path / "mrud.pem").exists()


@pytest.mark.parametrize("subject", ["ir-nid:0013542419", "agency:../x", "rahvar"])
def test_only_agency_subjects_have_keys(tmp_path: Path, subject: str) -> None:
    with pytest.raises(ValueError, match="agency"):
        IssuerKeys(tmp_path, passphrase=PASSPHRASE).signing_key(subject)


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    IssuerKeys(tmp_path, passphrase=PASSPHRASE).signing_key(RAHVAR)
    with pytest.raises(ServiceKeyError, match="passphrase"):
        IssuerKeys(tmp_path, passphrase=b"another passphrase, 16+ bytes").signing_key(RAHVAR)


def test_racing_creators_end_with_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(RACERS)
    kids: list[str] = []

    def race() -> None:
        keys = IssuerKeys(tmp_path, passphrase=PASSPHRASE)  # one per "worker process"
        barrier.wait()
        kids.append(keys.signing_key(RAHVAR)[0])

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == RACERS
    assert len(set(kids)) == 1
    assert IssuerKeys(tmp_path, passphrase=PASSPHRASE).signing_key(RAHVAR)[0] == kids[0]


def test_losing_the_link_race_loads_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file appears between our existence check and our link: the winner's key is used.
    path = tmp_path / "rahvar.pem"
    winner = IssuerKeys(tmp_path / "elsewhere", passphrase=PASSPHRASE)
    winner_kid, _ = winner.signing_key(RAHVAR)
    winner_pem = (tmp_path / "elsewhere" / "rahvar.pem").read_bytes()
    real_exists = Path.exists

    def exists_then_lands(self: Path) -> bool:
        if self == path:
            found = real_exists(self)
            if not found:
                path.write_bytes(winner_pem)  # the other worker links its file now
            return found
        return real_exists(self)

    monkeypatch.setattr(Path, "exists", exists_then_lands)
    loaded = create_or_load(path, passphrase=PASSPHRASE)
    monkeypatch.undo()
    assert IssuerKeys(tmp_path, passphrase=PASSPHRASE).signing_key(RAHVAR)[0] == winner_kid
    assert loaded.private_bytes_raw() == winner.signing_key(RAHVAR)[1].private_bytes_raw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "rahvar.pem"]


def test_from_settings_reads_the_passphrase_when_first_needed(tmp_path: Path) -> None:
    settings = Settings.model_construct(
        env="prod", licence_issuer_key_dir=tmp_path / "li", key_passphrase_file=None
    )
    keys = IssuerKeys.from_settings(settings)  # no passphrase configured: no error yet
    assert keys.directory == tmp_path / "li"
    with pytest.raises(ServiceKeyError, match="passphrase"):
        keys.signing_key(RAHVAR)


def test_outside_dev_a_missing_key_is_refused_unless_generation_is_allowed(
    tmp_path: Path,
) -> None:
    def settings(*, generate: bool) -> Settings:
        return Settings.model_construct(
            env="prod", licence_issuer_key_dir=tmp_path / "li", generate_keys=generate
        )

    refusing = IssuerKeys(tmp_path / "li", passphrase=PASSPHRASE, may_generate=False)
    with pytest.raises(ServiceKeyError, match="does not exist"):
        refusing.signing_key(RAHVAR)
    assert not (tmp_path / "li").exists() or not any((tmp_path / "li").iterdir())
    assert IssuerKeys.from_settings(settings(generate=False)).may_generate is False
    assert IssuerKeys.from_settings(settings(generate=True)).may_generate is True
    made = IssuerKeys(tmp_path / "li", passphrase=PASSPHRASE).signing_key(RAHVAR)[0]
    assert refusing.signing_key(RAHVAR)[0] == made  # an existing (provisioned) key loads


def test_default_key_directory_is_beside_the_other_service_keys() -> None:
    defaults = Settings.model_construct()
    assert defaults.licence_issuer_key_dir == Path("var/keys/licence-issuers")
    assert defaults.licence_issuer_key_dir.parent == defaults.checkpoint_key_file.parent


# --- registration and publication -----------------------------------------------------------------


def test_registered_once_through_the_pipeline(
    tmp_path: Path, engine: Engine, service: TransactionService
) -> None:
    keys = IssuerKeys(tmp_path, passphrase=PASSPHRASE)
    registrar = CountingRegistrar(service)
    kid = asyncio.run(keys.ensure_registered(RAHVAR, registrar))
    assert kid == keys.signing_key(RAHVAR)[0]
    assert (registrar.challenges, registrar.submitted) == (1, 1)
    with engine.connect() as conn:
        record = registry_store.load_key(conn, kid)
        index = registry_store.registration_index(conn, kid)
        assert store.current_tree_size(conn) == 1
    assert record is not None and record.subject == RAHVAR
    assert index == 0  # the first leaf of this fresh ledger
    lookups = registrar.lookups
    assert asyncio.run(keys.ensure_registered(RAHVAR, registrar)) == kid
    # Remembered: not even a registry lookup, let alone a submission.
    assert (registrar.lookups, registrar.challenges, registrar.submitted) == (lookups, 1, 1)
    # Another process over the same key directory finds the key in the registry.
    other = CountingRegistrar(service)
    assert asyncio.run(IssuerKeys(tmp_path, passphrase=PASSPHRASE).ensure_registered(RAHVAR, other))
    assert (other.challenges, other.submitted) == (0, 0)


def test_already_registered_answer_counts_as_done(
    tmp_path: Path, engine: Engine, service: TransactionService
) -> None:
    kid = asyncio.run(
        IssuerKeys(tmp_path, passphrase=PASSPHRASE).ensure_registered(
            RAHVAR, PipelineRegistrar(service)
        )
    )
    late = CountingRegistrar(service, blind=True)  # checked just before the other registered
    assert (
        asyncio.run(IssuerKeys(tmp_path, passphrase=PASSPHRASE).ensure_registered(RAHVAR, late))
        == kid
    )
    assert late.submitted == 1  # its key.register was answered "already exists"
    with engine.connect() as conn:
        assert store.current_tree_size(conn) == 1  # and left nothing in the ledger


def test_a_refused_registration_raises_and_is_not_remembered(
    tmp_path: Path, engine: Engine, service: TransactionService
) -> None:
    class StaleChallenge(CountingRegistrar):
        def issue_challenge(self, subject: str) -> str:
            super().issue_challenge(subject)
            return "A" * 43  # never issued

    keys = IssuerKeys(tmp_path, passphrase=PASSPHRASE)
    with pytest.raises(Problem) as caught:
        asyncio.run(keys.ensure_registered(RAHVAR, StaleChallenge(service)))
    assert caught.value.status == 400
    assert _published(keys, engine, RAHVAR) == []
    registrar = CountingRegistrar(service)
    asyncio.run(keys.ensure_registered(RAHVAR, registrar))
    assert registrar.submitted == 1


def test_published_keys_list_registered_keys_with_their_index(
    tmp_path: Path, engine: Engine, service: TransactionService
) -> None:
    keys = IssuerKeys(tmp_path, passphrase=PASSPHRASE)
    keys.signing_key(ASNAF)  # a key file, never registered: not published
    assert _published(keys, engine, RAHVAR, ASNAF) == []
    registrar = PipelineRegistrar(service)
    rahvar_kid = asyncio.run(keys.ensure_registered(RAHVAR, registrar))
    mrud_kid = asyncio.run(keys.ensure_registered("agency:mrud", registrar))
    fresh = IssuerKeys(tmp_path, passphrase=PASSPHRASE)  # what another worker publishes
    with engine.connect() as conn:
        published = fresh.published_keys(conn, agencies=["agency:mrud", RAHVAR, ASNAF, "agency:x1"])
    assert [(p.key.kid, p.key.issuer, p.registered_index) for p in published] == [
        (mrud_kid, "agency:mrud", 1),
        (rahvar_kid, RAHVAR, 0),
    ]
    assert not (tmp_path / "x1.pem").exists()  # listing never creates keys
    document = published_key_json(published[1])
    assert document["kid"] == rahvar_kid
    assert document["iss"] == RAHVAR
    assert document["registered_index"] == 0
    assert document["kty"] == "OKP" and "d" not in document
    # A credential signed with the registered key verifies with the published keys.
    _, private_key = keys.signing_key(RAHVAR)
    claims = CredentialClaims(
        issuer=RAHVAR,
        holder="ir-nid:0013542419",
        licence_type="ir.driving",
        number="9812345678",
        valid_from=date(2025, 3, 21),
        valid_until=date(2035, 3, 20),
        not_before=1_742_502_600,
        expires_at=2_057_949_000,
        issued_at=int(datetime(2025, 3, 22, tzinfo=UTC).timestamp()),
        licence_id="0b3c1f2e-1234-4abc-8def-0123456789ab",
    )
    token = encode_credential(claims, private_key=private_key)
    assert verify_credential(token, keys=verification_keys(published)) == claims


def test_a_key_registered_to_another_subject_is_refused(
    tmp_path: Path, engine: Engine, service: TransactionService
) -> None:
    # The same key file used for two agencies (a misconfiguration): the second one must fail.
    keys = IssuerKeys(tmp_path, passphrase=PASSPHRASE)
    asyncio.run(keys.ensure_registered(RAHVAR, PipelineRegistrar(service)))
    (tmp_path / "asnaf.pem").write_bytes((tmp_path / "rahvar.pem").read_bytes())
    with pytest.raises(ServiceKeyError, match="not registered to its agency"):
        asyncio.run(keys.ensure_registered(ASNAF, PipelineRegistrar(service)))
    assert _published(keys, engine, ASNAF) == []
