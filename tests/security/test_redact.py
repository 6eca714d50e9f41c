"""One redaction (`pipelines.redact`): DSN passwords in every form fully masked, registered secrets masked
wherever they appear, errors and log records redacted when they are made."""

from __future__ import annotations

import logging

import pytest

from pipelines.errors import SourceError, first_line
from pipelines.redact import MASK, install_log_redaction, redact, redact_obj, register_secret
from pipelines.sources.base import redact_dsn


@pytest.mark.parametrize(("text", "secret"), [
    ("postgresql://u:p@ss:w0rd@db.example:5432/m", "p@ss:w0rd"),          # '@' and ':' unencoded
    ("postgresql://u:p%40ss%3Aw0rd%21@db.example/m", "p%40ss%3Aw0rd%21"),  # percent-encoded
    ("mysql://root:s3cr@t@127.0.0.1:3306/db failed: refused", "s3cr@t"),
    ("host=h user=u password='se cr et' dbname=d", "se cr et"),            # libpq, single quotes + spaces
    ('host=h password="dq se cret" dbname=d', "dq se cret"),
    ("host=h password='it\\'s a s3cret' dbname=d", "s a s3cret"),           # escaped quote inside
    ("password = 'doubled''quote s3cret'", "quote s3cret"),
    ("jdbc:sqlserver://h:1433;databaseName=d;user=u;password=my se cret;encrypt=true", "my se cret"),
    ("Driver={ODBC};Server=h;UID=u;PWD={odbc;se}}cret};Database=d", "se}}cret"),
    ("Driver={ODBC};Server=h;UID=u;Pwd=odbc plain;", "odbc plain"),
    ("GET https://x/api?token=abcdef123&x=1", "abcdef123"),
    ("GET https://x/api?x=1&api_key=k3y-value", "k3y-value"),
    ("Authorization: Bearer eyJhbGciOi.abc", "eyJhbGciOi.abc"),
    ('{"password": "json s3cret", "user": "u"}', "json s3cret"),
])
def test_every_dsn_form_is_fully_masked(text, secret):
    for out in (redact(text), redact_dsn(text)):
        assert secret not in out and MASK in out
        # nothing half-masked: no 3+ character piece of the secret survives next to the mask
        assert not any(part in out for part in secret.replace("'", " ").split() if len(part) >= 4), out


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:8080/a@b", "field 'sources[ho_so].connection.password': unknown key",
    "postgresql://u@db.example/m", "password authentication failed for user \"nb\"",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_registered_secrets_and_their_parts_are_masked_everywhere(monkeypatch):
    register_secret("postgresql://nb:Reg1stered%40pw@h/db")
    assert redact("the password was Reg1stered@pw") == f"the password was {MASK}"
    assert redact("encoded Reg1stered%40pw") == f"encoded {MASK}"
    monkeypatch.setenv("TONGHOP_PII_KEY", "pii-key-for-redact-test")
    assert redact_obj({"a": ["x pii-key-for-redact-test y"]}) == {"a": [f"x {MASK} y"]}


def test_errors_are_redacted_when_made():
    err = SourceError("s", "postgresql://u:Err0r-pw@h/db", "cannot connect (password=Err0r-pw)", "fix it")
    assert "Err0r-pw" not in str(err) and "Err0r-pw" not in err.location and "Err0r-pw" not in err.problem
    assert "Err0r-pw" not in first_line(RuntimeError("dsn postgresql://u:Err0r-pw@h/db"))


def test_log_records_are_redacted(caplog):
    install_log_redaction()
    log = logging.getLogger("tonghop.test")
    with caplog.at_level(logging.INFO):
        log.info("connecting to %s", "postgresql://u:L0g-secret@h/db")
        try:
            raise RuntimeError("password='L0g-secret two'")
        except RuntimeError:
            log.exception("failed")
    assert "L0g-secret" not in caplog.text and MASK in caplog.text
