"""Outside text shown safely; credentials stripped from every URL."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagectl.errors import InputError
from imagectl.sanitize import check_free_text, strip_credentials, visible


def test_control_characters_are_shown_not_obeyed():
    assert visible("\x1b[2Jboom\nnext\tcol\r\x07\u202e") == "\\x1b[2Jboom\\nnext\\tcol\\r\\x07\\u202e"
    assert visible("DATA-1 — 한글 ok") == "DATA-1 — 한글 ok"


@given(st.text())
def test_visible_never_leaves_a_control_character(text):
    shown = visible(text)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in shown)
    assert "\u2028" not in shown and "\u202e" not in shown


@pytest.mark.parametrize(
    "url, clean",
    [
        ("https://user:TOKEN@git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
        ("https://x-token-auth:TOKEN@bitbucket.org:8443/a/b.git?private=TOKEN#TOKEN", "https://bitbucket.org:8443/a/b.git"),
        ("ssh://git@host:7999/a/b.git", "ssh://host:7999/a/b.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("deploy:TOKEN@host:org/repo.git", "host:org/repo.git"),
        ("https://git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
    ],
)
def test_credentials_are_stripped(url, clean):
    assert strip_credentials(url) == clean
    assert "TOKEN" not in (strip_credentials(url) or "")


def test_free_text_limits():
    assert check_free_text("weekly release", "reason", 500) == "weekly release"
    with pytest.raises(InputError, match="at most 500"):
        check_free_text("x" * 501, "reason", 500)
    with pytest.raises(InputError, match="NUL"):
        check_free_text("a\x00b", "reason", 500)
    with pytest.raises(InputError, match="empty"):
        check_free_text("  ", "actor", 100)
