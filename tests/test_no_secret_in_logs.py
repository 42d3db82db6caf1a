"""No fake secret in any log record of the whole test session.

tests/conftest.py captures every record that reaches the root logger or the Powertools
logger ("alchemiser", which does not propagate) and orders this module last, so this
check covers every test that ran before it in the session.
"""

from __future__ import annotations

import logging

from alchemiser.observability import logger
from tests.conftest import CAPTURED_LOGGERS, SessionLogCapture
from tests.integration.aws_stack import all_fake_secret_values


def test_the_capture_sees_both_loggers(session_log_capture: SessionLogCapture) -> None:
    logger.info("secret-check canary", extra={"canary": "powertools"})
    logging.getLogger("tests.secret_check").warning("secret-check canary (root)")
    texts = session_log_capture.texts[-2:]
    assert "secret-check canary" in texts[0]
    assert "powertools" in texts[0]
    assert "secret-check canary (root)" in texts[1]
    assert set(CAPTURED_LOGGERS) == {"", logger.name}


def test_no_fake_secret_in_any_log_record(session_log_capture: SessionLogCapture) -> None:
    values = all_fake_secret_values()
    assert values
    leaks = [
        (value, text[:300])
        for text in session_log_capture.texts
        for value in values
        if value in text
    ]
    assert not leaks, f"{len(leaks)} log record(s) hold a secret value, first: {leaks[0]}"
