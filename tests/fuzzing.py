"""What the fuzzer sends (hypothesis strategies from the contract's shapes) and what it checks.

Shapes come from DESIGN.md: every HTTP route (the table, the legacy routes, /leave, SSE and
long-poll) and every Socket.IO event, each field given a value of the right type, the wrong type,
a huge or unicode one, a nested one, or left out; game codes of our game, of another game, wrong
ones; tokens of the caller, of another game, forged. Raw Engine.IO/Socket.IO packets too.

Every invariant holds for every shape: the shapes that broke them when the fuzzer was written
(cursors past 2^63, a legacy choice that is not a string, non-JSON, unknown and reserved events)
were fixed in issue 19, and are generated like any other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from arcane.errors import ErrorCode

CODES = {code.value for code in ErrorCode}
MAX_CURSOR = 2**63 - 1

# -- values ---------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
unicode_text = st.text(st.characters(codec="utf-8"), max_size=60)  # any character JSON can carry
huge_text = st.integers(5_000, 70_000).map(lambda n: "é" * n)  # past the socket and body limits
names = st.text(max_size=30) | unicode_text | st.just("") | st.just("   ") | huge_text | st.just("<script>")
cursors = (
    st.integers(0, 50) | st.integers(0, MAX_CURSOR) | st.integers(MAX_CURSOR - 2, MAX_CURSOR + 2)
    | st.integers(-(2**70), 2**70)
)


def field_value(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: mostly of its type, often of any other."""
    return right | json_values | st.lists(json_values, max_size=3) | huge_text


MISSING = object()


def body_of(shape: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A JSON body for `shape`: each field present with some value, or left out, plus extras;
    sometimes not an object at all."""
    fields = {name: field_value(right) | st.just(MISSING) for name, right in shape.items()}
    objects = st.fixed_dictionaries(fields, optional={"__proto__": json_values, "extra": json_values}).map(
        lambda body: {k: v for k, v in body.items() if v is not MISSING})
    return objects | json_values | st.recursive(st.just({}), lambda inner: st.dictionaries(st.sampled_from(list(shape) or ["x"]), inner, max_size=2), max_leaves=8)


# -- HTTP -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "{code}" stands for the target game's code
    shape: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    legacy: bool = False  # acts on the session's game: the caller authenticates by cookie

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("POST", "/api/games", {"player_name": names, "max_players": st.integers(-5, 10)}),
    Route("POST", "/api/games/{code}/players", {"player_name": names}),
    Route("POST", "/api/games/{code}/spectators", {"name": names}),
    Route("POST", "/api/games/{code}/leave"),
    Route("GET", "/api/games/{code}"),
    Route("POST", "/api/games/{code}/start"),
    Route("GET", "/api/games/{code}/interrogation"),
    Route("POST", "/api/games/{code}/interrogation", {"answer_id": st.text(max_size=10), "question_id": st.text(max_size=10)}),
    Route("POST", "/api/games/{code}/choices", {"option_id": st.text(max_size=10), "text": unicode_text}),
    Route("POST", "/api/games/{code}/chat", {"text": unicode_text}),
    Route("POST", "/api/games/{code}/typing", {"is_typing": st.booleans()}),
    Route("POST", "/api/games/{code}/skip", {"player_id": st.text(max_size=14)}),
    Route("GET", "/api/games/{code}/recap"),
    Route("POST", "/api/games/{code}/rematch"),
    Route("POST", "/api/games/{code}/replay", {"public": st.booleans() | st.text(max_size=3)}),
    Route("GET", "/api/games/{code}/poll"),
    Route("GET", "/api/games/{code}/events"),
    Route("POST", "/api/set_username", {"username": names}, legacy=True),
    Route("POST", "/api/create_game", {"player_name": names, "username": names, "max_players": st.integers(-5, 10)}, legacy=True),
    Route("POST", "/api/join_game", {"game_code": st.text(max_size=8), "player_name": names}, legacy=True),
    Route("GET", "/api/session_info", legacy=True),
    Route("GET", "/api/game_state", legacy=True),
    Route("GET", "/api/current_scenario", legacy=True),
    Route("GET", "/api/my_whisper", legacy=True),
    Route("POST", "/api/make_choice", {"choice": st.text(max_size=20), "option_id": st.text(max_size=10), "text": unicode_text}, legacy=True),
    Route("GET", "/api/waiting_for", legacy=True),
]

# Which game the request names, and whose credentials it carries.
TARGETS = ["lobby", "playing", "other", "unknown", "garbage"]
CALLERS = ["host", "guest", "spectator", "other_game", "forged", "none"]

query_values = st.none() | cursors.map(str) | st.text(max_size=12) | st.just("") | st.just("1e9") | st.just("-0")
raw_bodies = st.binary(max_size=200) | st.just(b"{") | st.just(b'{"text": NaN}') | st.just(b"\xff\xfe")


@dataclass
class HttpCase:
    route: Route
    target: str
    caller: str
    body: Any  # a JSON value, or bytes sent raw
    query: dict[str, str]
    content_type: str
    last_event_id: str | None


def header_value(value: str | None) -> bool:
    """What an HTTP client can send as a header's value: printable ASCII, no line breaks."""
    return value is None or (value.isascii() and value.isprintable())


def http_cases() -> st.SearchStrategy[HttpCase]:
    return st.sampled_from(ROUTES).flatmap(lambda route: st.builds(
        HttpCase,
        route=st.just(route),
        target=st.sampled_from(TARGETS),
        caller=st.sampled_from(CALLERS),
        body=body_of(route.shape) | raw_bodies,
        query=st.fixed_dictionaries({}, optional={
            "after": query_values.filter(lambda v: v is not None), "timeout": st.sampled_from(["0", "-1", "x", "0.1", "1e999", "nan"]),
            "last_event_id": query_values.filter(lambda v: v is not None), "token": st.text(max_size=20),
        }),
        content_type=st.sampled_from(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
        last_event_id=st.none() | query_values.filter(header_value),
    ))


def check_refusal(status: int, body: bytes) -> str:
    """A refusal's body is `{"error": {"code", "message"}}` with a contract code of that status."""
    payload = json.loads(body)
    error = payload["error"]
    assert isinstance(error["message"], str) and error["code"] in CODES, payload
    assert ErrorCode(error["code"]).status == status, (status, payload)
    return str(error["code"])


# -- Socket.IO ---------------------------------------------------------------------------------------

EVENTS: dict[str, dict[str, st.SearchStrategy[Any]] | None] = {
    "join_game_room": {"game_code": st.text(max_size=8), "last_seq": cursors},
    "leave_game_room": {"game_code": st.text(max_size=8)},
    "make_choice": {"option_id": st.text(max_size=10), "text": unicode_text},
    "chat_message": {"text": unicode_text},
    "typing": {"is_typing": st.booleans()},
    "request_presence": None,
    "ping": None,
}
RESERVED = ["connect", "disconnect", "connect_error", "message", "error", "newListener", "removeListener"]
OLD = ["choice_submitted", "scenario_generated", "turn_resolved"]


@dataclass
class SocketCase:
    event: str
    data: Any  # MISSING: no payload at all
    game: str  # which game's code a `game_code` field names: ours, another, or what was generated
    extra_args: list[Any]


def socket_cases() -> st.SearchStrategy[SocketCase]:
    events = st.sampled_from(list(EVENTS)) | st.sampled_from(RESERVED + OLD) | st.text(max_size=20)

    def payloads(event: str) -> st.SearchStrategy[Any]:
        shape = EVENTS.get(event)
        return (body_of(shape) if shape else json_values) | st.just(MISSING)

    return events.flatmap(lambda event: st.builds(
        SocketCase, event=st.just(event), data=payloads(event),
        game=st.sampled_from(["ours", "other", "as generated"]),
        extra_args=st.lists(json_values, max_size=2),
    ))


def check_ack(answer: Any) -> None:
    """An ack is `{ok: true, ...}` or `{error: {code, message}}` with a contract code, never a 5xx."""
    assert isinstance(answer, dict), answer
    if "error" in answer:
        error = answer["error"]
        assert error["code"] in CODES and isinstance(error["message"], str), answer
        assert ErrorCode(error["code"]).status < 500, answer
    else:
        assert answer.get("ok") is True, answer


# -- raw Engine.IO / Socket.IO packets ------------------------------------------------------------------

def _packet_parts() -> st.SearchStrategy[str]:
    engine = st.sampled_from("0123456789") | st.text(max_size=2)
    socket = st.sampled_from(["", "0", "1", "2", "3", "4", "5", "6", "9"])
    namespace = st.sampled_from(["", "/,", "/admin,", "/" + "x" * 300 + ","])
    ack = st.sampled_from(["", "1", "99999999999999999999", "-1", "0x1"])
    payload = (
        json_values.map(json.dumps) | st.sampled_from(["[", "[]", '["x"', '[1]', '[null]', '["ping"]', "{", '{"token":1}', "]", ""])
        | st.text(max_size=30)
    )
    return st.tuples(engine, socket, namespace, ack, payload).map("".join)


raw_packets = _packet_parts() | st.text(max_size=50) | st.just("42[") | st.just("4" + "[" * 5000)


# -- profiles: a fixed seed and few examples in CI; `make fuzz` runs the "fuzz" profile ---------------

def register_profiles() -> None:
    from hypothesis import HealthCheck, settings

    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
    settings.register_profile("ci", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
                              derandomize=True, database=None, print_blob=True, **common)
    settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")),
                              print_blob=True, **common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
