"""Player tokens: verified once, then remembered, and never accepted unsigned."""

from __future__ import annotations

import pytest

from arcane.errors import ArcaneError, ErrorCode
from arcane.game.records import Identity
from arcane.identity import Tokens, bearer


def test_a_remembered_token_still_answers_only_for_itself() -> None:
    tokens = Tokens("k" * 32)
    good = tokens.issue("ABCDEF", "p1")
    assert tokens.read(good) == Identity("ABCDEF", "p1")
    assert tokens.read(good) == Identity("ABCDEF", "p1")  # from memory this time
    payload, _, signature = good.rpartition(".")
    forged = tokens.issue("ABCDEF", "p2").rpartition(".")[0] + "." + signature
    for bad in (forged, payload + ".x" + signature[1:], good + "x", payload):
        with pytest.raises(ArcaneError) as refused:
            tokens.read(bad)
        assert refused.value.code == ErrorCode.AUTH_REQUIRED
    # Another key refuses what this one remembers.
    with pytest.raises(ArcaneError):
        Tokens("o" * 32).read(good)


def test_the_memory_of_verified_tokens_is_bounded() -> None:
    tokens = Tokens("k" * 32)
    tokens.VERIFIED_MAX = 10
    issued = [tokens.issue("ABCDEF", f"p{i}") for i in range(25)]
    for token in issued:
        tokens.read(token)
        assert len(tokens._verified) <= 10
    assert [tokens.read(t).player_id for t in issued] == [f"p{i}" for i in range(25)]


def test_a_bearer_header_gives_its_token_whatever_the_case_of_its_scheme() -> None:
    assert bearer("Bearer abc.def") == bearer("bearer  abc.def ") == "abc.def"
    assert bearer("Bearer ") is bearer("Basic abc") is bearer("") is None
