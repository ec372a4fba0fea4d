"""DKIM through OpenSSL, checked by an independent implementation (dkimpy):
rsa-sha256 and ed25519-sha256, simple and relaxed, on messages with
non-ASCII text, long lines, runs of spaces and personal fields, at unit level
and through real sends to a real SMTP server; and the body hash computed
piecewise from the skeleton against the hash of the whole canonical body.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dkim.canonicalization import Relaxed, Simple
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import job
from digest.config import Settings
from digest.deliver.bodyhash import BodyHash, body_plan
from digest.deliver.dkim import DkimKey, load_dkim_key, signed
from digest.deliver.message import Message, MessageSkeleton, build_skeleton, render_message
from digest.errors import ConfigError
from digest.render import compile_edition
from tests.conftest import ROOT, settings_for
from tests.render_samples import golden_edition
from tests.smtp_server import PortZeroController, RecordingHandler

Server = tuple[PortZeroController, RecordingHandler]
DnsFunc = Callable[..., bytes]
CANONICALIZATIONS = ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"]

# ---------------------------------------------------------------- keys


def rsa_key(folder: Path) -> tuple[Path, bytes]:
    """A 2048-bit key file and the DNS TXT record that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def ed25519_key(folder: Path, pem: bool = False) -> tuple[Path, bytes]:
    """An ed25519 key file, as dkimpy writes it (the base64 of the 32-byte
    seed) or as PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes)."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = folder / ("dkim-ed.pem" if pem else "dkim.ed25519")
    if pem:
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        data = base64.b64encode(seed) + b"\n"
    path.write_bytes(data)
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return path, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)


def key_pair(folder: Path, algorithm: str) -> tuple[Path, bytes]:
    return rsa_key(folder) if algorithm == "rsa" else ed25519_key(folder)


def dns_for(record: bytes, looked_up: list[bytes] | None = None) -> DnsFunc:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        if looked_up is not None:
            looked_up.append(name)
        return record

    return dns


def signature_tags(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    field = re.search(r"^DKIM-Signature:(.*?)\r\n(?![ \t])", head + "\r\n", re.S | re.M)
    assert field is not None, head
    value = re.sub(r"\s+", "", field.group(1))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


# ------------------------------------------------ templates and messages


def personal_templates(folder: Path) -> Path:
    """Templates whose greeting holds the name and further columns (field()),
    in both parts, with runs of spaces and tabs and an over-long line."""
    target = folder / "my-templates"
    (target / "partials").mkdir(parents=True)
    intro = (ROOT / "templates" / "partials" / "intro.mjml.j2").read_text(encoding="utf-8")
    (target / "partials" / "intro.mjml.j2").write_text(
        intro.replace(
            'Hello {{ slot("name") }},',
            'Hello {{ slot("name") }} of {{ field("Company") }},  \t '
            '<a href="{{ field("Site") }}">{{ field("Motto") }}</a>',
        ),
        encoding="utf-8",
    )
    text = (ROOT / "templates" / "digest.txt.j2").read_text(encoding="utf-8")
    greeting = (
        'Hello {{ slot("name") }} of {{ field("Company") }},   \t\n'
        + "a line far longer than seventy-six columns, " * 6
        + '{{ field("Motto") }}  \n\t  indented  by   tabs\t\t\n'
    )
    (target / "digest.txt.j2").write_text(
        text.replace('Hello {{ slot("name") }},', greeting), encoding="utf-8"
    )
    return target


SUBSCRIBERS = (
    "email,name,sections,status,Company,Site,Motto\n"
    'ada@example.org,"Zoë  Ørsted-Łukasiewicz   ",,active,"Ærø   Næringsliv  ",'
    'https://ærø.example/,"  trailing   spaces   "\n'
    'grace@example.org,Grace Hopper,,active,東京の図書館 ,javascript:alert(1),"'
    + "a motto that goes on and on, "
    * 12
    + '"\n'
    "edsger@example.org,Edsger Dijkstra,,active,,,\n"
)


@cache
def skeleton_with_fields() -> MessageSkeleton:
    """A real skeleton: the golden edition (emoji, CJK, right-to-left) in
    templates with field() slots."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="digest-dkim-"))
    look = Settings(templates=personal_templates(folder)).look
    compiled = compile_edition(golden_edition(), look)
    return build_skeleton(compiled, Settings().sender, b"secret for tests")


def message_for(name: str, fields: tuple[tuple[str, str], ...]) -> Message:
    return render_message(
        skeleton_with_fields(),
        "https://digest.example.org",
        "zoe@example.org",
        name,
        "<edition.1@example.org>",
        fields,
        "Mon, 30 Nov 2026 07:00:00 +0000",
    )


def canonical_hash(body: bytes, relaxed: bool) -> bytes:
    """dkimpy's canonical form of a whole body, hashed: the reference."""
    return hashlib.sha256((Relaxed if relaxed else Simple).canonicalize_body(body)).digest()


# ---------------------------------------------------- body hash, piecewise

# Bytes where canonicalisation has something to do: spaces, tabs, CR and LF
# alone and together, empty lines, non-ASCII, QP's "=".
PIECES = st.lists(
    st.sampled_from([b"a", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\xc3\xa9", b"="]),
    max_size=40,
).map(b"".join)


@given(body=PIECES, cuts=st.lists(st.integers(0, 40), max_size=6), relaxed=st.booleans())
def test_body_hash_fed_in_any_cuts_equals_the_whole(
    body: bytes, cuts: list[int], relaxed: bool
) -> None:
    state, start = BodyHash(relaxed), 0
    for cut in sorted(min(c, len(body)) for c in cuts):
        state.update(body[start:cut])
        start = cut
    copy = state.copy()
    state.update(body[start:])
    assert state.digest() == canonical_hash(body, relaxed)
    copy.update(body[start:])  # a copy carries on independently
    assert copy.digest() == state.digest()


def fixed_and_values(fixed: list[bytes]) -> st.SearchStrategy[tuple[list[bytes], list[bytes]]]:
    """Fixed pieces, and a value for each slot between two of them."""
    slots = len(fixed) - 1
    return st.tuples(st.just(fixed), st.lists(PIECES, min_size=slots, max_size=slots))


@given(case=st.lists(PIECES, min_size=1, max_size=5).flatmap(fixed_and_values))
def test_prepared_fixed_pieces_with_any_values_hash_as_the_whole_body(
    case: tuple[list[bytes], list[bytes]],
) -> None:
    fixed, values = case
    whole = fixed[0] + b"".join(v + f for v, f in zip(values, fixed[1:], strict=True))
    for relaxed in (False, True):
        plan = body_plan(fixed, relaxed)
        assert plan.digest(values) == canonical_hash(whole, relaxed)
        assert plan.digest(values) == plan.digest(values)  # the plan is not consumed


NAMES = st.text(max_size=60)  # any Unicode, control characters and spaces included


@given(name=NAMES, company=NAMES, motto=st.text(max_size=300), relaxed=st.booleans())
def test_a_real_messages_body_hash_needs_only_its_personal_parts(
    name: str, company: str, motto: str, relaxed: bool
) -> None:
    message = message_for(name, (("Company", company), ("Motto", motto), ("Site", motto)))
    plan = message.skeleton.digests.plan(relaxed)
    assert plan.digest(message.values) == canonical_hash(message.body, relaxed)


# ------------------------------------------------ signatures, unit level


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
@pytest.mark.parametrize("canonicalization", CANONICALIZATIONS)
def test_signature_verifies_with_dkimpy(
    tmp_path: Path, algorithm: str, canonicalization: str
) -> None:
    key_file, record = key_pair(tmp_path, algorithm)
    key = load_dkim_key(key_file, "news", "example.org", canonicalization)
    message = message_for(
        "Zoë  Ørsted-Łukasiewicz", (("Company", "Ærø   Næringsliv"), ("Motto", "x  " * 200))
    )
    raw = signed(message, key)
    assert dkim.verify(raw, dnsfunc=dns_for(record))
    tags = signature_tags(raw)
    assert tags["a"] == f"{algorithm}-sha256" and tags["c"] == canonicalization
    body_relaxed = canonicalization.endswith("/relaxed")
    assert base64.b64decode(tags["bh"]) == canonical_hash(message.body, body_relaxed)
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")[:8])
    other = message_for("Zoë  Ørsted-Łukasiewicz", (("Company", "Ærø Næringsliv AS"),))
    forged = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + other.body
    assert not dkim.verify(forged, dnsfunc=dns_for(record))


@settings(max_examples=25)  # each example signs and verifies an 80 KB message
@given(name=NAMES, company=NAMES, canonicalization=st.sampled_from(CANONICALIZATIONS))
def test_any_personal_values_give_a_signature_that_verifies(
    name: str, company: str, canonicalization: str
) -> None:
    key, record = _ed25519_for_property_test()
    key = DkimKey(key.selector, key.domain, key.private_key, canonicalization)
    raw = signed(message_for(name, (("Company", company),)), key)
    assert dkim.verify(raw, dnsfunc=dns_for(record))


@cache
def _ed25519_for_property_test() -> tuple[DkimKey, bytes]:
    import tempfile

    key_file, record = ed25519_key(Path(tempfile.mkdtemp(prefix="digest-dkim-")))
    return load_dkim_key(key_file, "news", "example.org"), record


@pytest.mark.parametrize("canonicalization", CANONICALIZATIONS)
def test_folded_repeated_and_spaced_header_fields_are_signed_as_received(
    tmp_path: Path, canonicalization: str
) -> None:
    # The header builder may fold long fields and a relay may add fields:
    # the last instance of each signed name is the one signed (RFC 6376 5.4.2).
    key_file, record = rsa_key(tmp_path)
    key = load_dkim_key(key_file, "news", "example.org", canonicalization)
    message = message_for("Ada", ())
    folded_to = (
        b"\r\nTo:   \t Ada  Lovelace, with a display name long enough that the header\r\n"
        b"\tbuilder folded it \r\n <ada@example.org>"
    )
    head = b"Received: from relay.example\r\nTo: someone@example.org\r\n" + re.sub(
        rb"\r\nTo: [^\r]*", folded_to, message.head
    )
    raw = signed(Message(head, message.skeleton, message.values), key)
    dns = dns_for(record)
    assert dkim.verify(raw, dnsfunc=dns)
    # The upper To is not the signed one; the folded one is, fold and all.
    assert dkim.verify(raw.replace(b"To: someone@", b"To: anyone@"), dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"\tbuilder folded", b"\tbuilder Folded"), dnsfunc=dns)


# ------------------------------------------------ through a real send


@pytest.mark.parametrize(
    ("algorithm", "canonicalization"),
    [
        ("rsa", "relaxed/relaxed"),
        ("rsa", "simple/simple"),
        ("ed25519", "relaxed/relaxed"),
        ("ed25519", "simple/simple"),
    ],
)
def test_every_message_of_a_send_verifies(
    project: Path, smtp_server: Server, tmp_path: Path, algorithm: str, canonicalization: str
) -> None:
    controller, handler = smtp_server
    (project / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
    key_file, record = key_pair(tmp_path, algorithm)
    env = smtp(
        controller,
        DIGEST_DKIM_KEY_FILE=str(key_file),
        DIGEST_DKIM_SELECTOR="news",
        DIGEST_DKIM_DOMAIN="mail.example.org",
        DIGEST_DKIM_CANONICALIZATION=canonicalization,
        DIGEST_TEMPLATES=str(personal_templates(tmp_path)),
    )
    assert job.send(settings_for(project, **env)).report.counts == {"sent": 3}
    looked_up: list[bytes] = []
    dns = dns_for(record, looked_up)
    texts = {}
    for (_, _, raw), parsed in zip(handler.messages, handler.parsed(), strict=True):
        assert dkim.verify(raw, dnsfunc=dns), parsed["To"]
        tags = signature_tags(raw)
        assert (tags["a"], tags["c"], tags["d"]) == (
            f"{algorithm}-sha256",
            canonicalization,
            "mail.example.org",
        )
        assert {"from", "list-unsubscribe", "list-unsubscribe-post", "message-id"} <= set(
            tags["h"].split(":")
        )
        texts[parsed["To"].addresses[0].addr_spec] = parsed.get_body(("plain",)).get_content()
        token = re.search(rb"unsubscribe\?token=([\w.-]+)", raw)
        assert token is not None
        tampered = raw.replace(token.group(1), token.group(1).swapcase())
        assert not dkim.verify(tampered, dnsfunc=dns)
    assert set(looked_up) == {b"news._domainkey.mail.example.org."}
    # The personal parts really are in the signed messages.
    assert "Hello Zoë  Ørsted-Łukasiewicz of Ærø   Næringsliv," in texts["ada@example.org"]
    assert "Hello Grace Hopper of 東京の図書館," in texts["grace@example.org"]


def test_a_test_copy_is_signed_too(project: Path, smtp_server: Server, tmp_path: Path) -> None:
    controller, handler = smtp_server
    key_file, record = ed25519_key(tmp_path, pem=True)
    env = smtp(controller, DIGEST_DKIM_KEY_FILE=str(key_file), DIGEST_DKIM_SELECTOR="ed")
    assert job.test_send(settings_for(project, **env), "ada@example.org").test_ok
    [(_, _, raw)] = handler.messages
    assert signature_tags(raw)["a"] == "ed25519-sha256"
    assert dkim.verify(raw, dnsfunc=dns_for(record))


def smtp(controller: PortZeroController, **extra: str) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
        **extra,
    }


# ------------------------------------------------ bad keys and settings


def tiny_rsa_pem() -> bytes:
    """A 511-bit RSA key (cryptography will not generate one): known primes."""
    p, q, e = 2**255 - 19, 2**256 - 189, 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )  # fmt: skip
    return numbers.private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def encrypted_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )


def ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


BROKEN_PEM = (
    b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, r"cannot read the DKIM key .*missing\.pem"),
        (b"  \n", r"DKIM key file .* is empty"),
        (b"secret-key-material, not a key", r"neither a PEM private key nor the base64"),
        (base64.b64encode(b"secret-key-material"), r"neither a PEM private key nor the base64"),
        (BROKEN_PEM, r"not a private key digest can read; make one with: openssl genrsa"),
        (encrypted_pem(), r"is encrypted; digest needs it unencrypted: openssl pkey"),
        (tiny_rsa_pem(), r"511-bit RSA key; receivers refuse keys under 1024 bits"),
        (ec_pem(), r"neither an RSA nor an Ed25519 key \(\w+\); DKIM signs with those"),
    ],
    ids=["missing", "empty", "text", "short-seed", "broken-pem", "encrypted", "511-bit", "ec"],
)
def test_a_bad_key_is_a_config_error_that_says_how_to_fix_it(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "missing.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_dkim_key(path, "news", "example.org")
    assert "DIGEST_DKIM_KEY_FILE" in str(caught.value)
    shown = str(caught.value)
    assert "secret-key-material" not in shown and "c2VjcmV0" not in shown
    if content and len(content) > 70:  # a real key: none of its body is shown
        assert content[40:70].decode("latin-1") not in shown


def test_a_bad_key_stops_the_send_before_the_first_message_and_is_never_logged(
    project: Path, smtp_server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    controller, handler = smtp_server
    with pytest.raises(ConfigError, match="DIGEST_DKIM_SELECTOR is empty"):
        settings_for(project, DIGEST_DKIM_KEY_FILE=str(tmp_path / "k.pem"))
    bad = tmp_path / "bad.pem"
    bad.write_bytes(BROKEN_PEM)
    caplog.set_level(logging.DEBUG)
    env = smtp(controller, DIGEST_DKIM_KEY_FILE=str(bad), DIGEST_DKIM_SELECTOR="news")
    with pytest.raises(ConfigError, match="not a private key digest can read"):
        job.send(settings_for(project, **env))
    assert handler.messages == []
    # A good key's send logs nothing of the key either.
    good, _ = rsa_key(tmp_path)
    env["DIGEST_DKIM_KEY_FILE"] = str(good)
    assert job.send(settings_for(project, **env)).report.counts == {"sent": 3}
    lines = [line for line in good.read_bytes().decode().splitlines() if "-----" not in line]
    logged = caplog.text + repr(settings_for(project, **env))
    assert "c2VjcmV0" not in logged
    assert not any(line in logged for line in lines)


@pytest.mark.parametrize("value", ["relaxed", "relaxed/strict", "simple/relaxed/simple", "nofws"])
def test_an_unknown_canonicalization_is_refused(project: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"DIGEST_DKIM_CANONICALIZATION.*HEADER/BODY"):
        settings_for(project, DIGEST_DKIM_CANONICALIZATION=value)


def test_canonicalization_defaults_to_relaxed_for_both(project: Path) -> None:
    assert settings_for(project).dkim_canonicalization == "relaxed/relaxed"
    spelled = settings_for(project, DIGEST_DKIM_CANONICALIZATION=" Simple/RELAXED ")
    assert spelled.dkim_canonicalization == "simple/relaxed"


def test_a_worker_signs_the_copy_stored_with_the_edition(
    project: Path, pg_url: str, smtp_server: Server, tmp_path: Path
) -> None:
    # A worker has neither list nor templates: the skeleton (and so the body
    # hash's prepared state) comes from the compiled copy in the database.
    from tests.deliver.test_worker import READERS, edition_going_out, sender_env, worker

    controller, handler = smtp_server
    edition_going_out(project, pg_url)
    key_file, record = rsa_key(tmp_path)
    env = sender_env(
        project,
        pg_url,
        controller.port,
        DIGEST_SUBSCRIBERS=str(tmp_path / "gone.csv"),
        DIGEST_DKIM_KEY_FILE=str(key_file),
        DIGEST_DKIM_SELECTOR="news",
    )
    done = worker(project, env, "--once")
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert len(handler.messages) == READERS
    dns = dns_for(record)
    assert all(dkim.verify(raw, dnsfunc=dns) for _, _, raw in handler.messages)


def test_a_stored_copy_in_either_format_hashes_as_the_skeleton_it_came_from() -> None:
    # Copies stored before the body was kept as fixed pieces held each
    # part's pieces and slot names; both read back to the same skeleton.
    import json

    from digest.deliver.message import _qp
    from digest.deliver.stored import from_json, to_json

    compiled = compile_edition(golden_edition(), Settings().look)
    skeleton = build_skeleton(compiled, Settings().sender, b"secret for tests")
    stored = json.loads(to_json(skeleton, "https://digest.example.org"))
    earlier = {k: v for k, v in stored.items() if k not in ("body", "slots")}
    for key, prepared in (("text", compiled.text), ("html", compiled.html)):
        pieces = [_qp(piece).decode("ascii") for piece in prepared.parts]
        earlier[key] = {"pieces": pieces, "slots": list(prepared.slots)}
    message = render_message(skeleton, "https://x.example", "a@example.org", "Zoë", "<m@x>")
    for text in (json.dumps(stored), json.dumps(earlier)):
        again, _ = from_json(text, b"secret for tests", "edition x")
        assert (again.body, again.slots) == (skeleton.body, skeleton.slots)
        for relaxed in (False, True):
            digest = again.digests.plan(relaxed).digest(message.values)
            assert digest == canonical_hash(message.body, relaxed)
