"""The room's places cannot be hoarded (issue 26, item 4) and its log keeps the token out:
the rules of explorer.cli.room_places on a fake kernel manager and clock, the log line of
explorer.cli.room_log, then a real server over plain HTTP (slow)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

import pytest
from conftest import artifact_path, checkout_env
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sharing import Visitor, kernel_id_of, kernels, room_server, trivial_notebook

from explorer.cli.room_log import log_request, scrub_uri
from explorer.cli.room_pages import FULL_PAGE
from explorer.cli.room_places import ADDRESS, FULL, Room


class FakeKernels:
    """What Room asks of Voila's kernel manager."""

    def __init__(self) -> None:
        self.alive: set[str] = set()
        self.shut: list[str] = []

    def __contains__(self, kernel_id: str) -> bool:
        return kernel_id in self.alive

    def start(self) -> str:
        kernel_id = uuid.uuid4().hex
        self.alive.add(kernel_id)
        return kernel_id

    def add_restart_callback(self, *args) -> None:
        pass

    async def shutdown_kernel(self, kernel_id: str) -> None:
        self.alive.discard(kernel_id)
        self.shut.append(kernel_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_room(cap: int = 10, grace: float = 60, per_address: int = 2):
    km, clock = FakeKernels(), Clock()
    return Room(km, cap, grace, per_address, clock=clock), km, clock


def page(room: Room, km: FakeKernels, address: str, visitor: str = "v") -> str:
    """A page served completely: admitted, its kernel bound, delivered."""
    assert room.admit(address) is None
    kernel_id = km.start()
    room.bind(kernel_id, visitor, address)
    room.leave(address)
    room.delivered(kernel_id)
    return kernel_id


def shut(room: Room) -> list[str]:
    return asyncio.run(room.shut_expired(logging.getLogger("test")))


def test_a_kernel_whose_page_never_connects_is_shut_down_after_the_grace():
    room, km, clock = make_room(grace=60)
    hoarded = page(room, km, "10.0.0.1")
    visitor = page(room, km, "10.0.0.2")
    room.connected(visitor)  # a browser: its websocket connected
    clock.now += 59.9
    assert shut(room) == [] and km.alive == {hoarded, visitor}
    clock.now += 0.1
    assert shut(room) == [hoarded] and km.alive == {visitor}
    assert room.visitors() == 1  # the place is free again
    # ... and its page's session poll still answers its visitor: "ended", the banner
    assert room.owner(hoarded) == "v" and not room._alive(hoarded)
    clock.now += 10_000
    assert shut(room) == []  # a connected kernel is never shut down for this


def test_the_grace_starts_when_the_page_is_delivered_not_when_the_kernel_starts():
    room, km, clock = make_room(grace=60)
    assert room.admit("10.0.0.1") is None
    kernel_id = km.start()
    room.bind(kernel_id, "v", "10.0.0.1")  # the notebook is still running for its page
    clock.now += 600
    assert shut(room) == []
    room.delivered(kernel_id)
    clock.now += 60
    assert shut(room) == [kernel_id]


def test_one_address_holds_at_most_n_unconnected_kernels_pages_being_served_included():
    room, km, _ = make_room(per_address=2)
    first = page(room, km, "10.0.0.1")
    assert room.admit("10.0.0.1") is None  # a second page, still being served
    assert room.admit("10.0.0.1") == ADDRESS  # a third: refused, no kernel
    assert room.admit("10.0.0.9") is None  # another address is not affected
    room.connected(first)  # a page that connects frees its address's count
    assert room.admit("10.0.0.1") is None
    assert len(km.alive) == 1


def test_the_full_page_counts_pages_being_served():
    """The room-full page said "1 of 2 places are taken" while full: a page still being
    served (kernel not bound yet) holds a place too."""
    room, km, _ = make_room(cap=2, per_address=0)
    page(room, km, "10.0.0.1")
    assert room.admit("10.0.0.2") is None  # being served: no kernel bound yet
    assert room.admit("10.0.0.3") == FULL
    assert room.taken() == 2
    assert "2 of 2 places are taken" in FULL_PAGE.format(count=room.taken(), cap=2)


def test_negative_limits_are_refused():
    with pytest.raises(ValueError, match="grace_s=-1"):
        Room(FakeKernels(), 2, -1, 2)


OPS = st.lists(st.tuples(st.sampled_from(["admit", "bind", "deliver", "connect", "wait",
                                          "shut", "die"]),
                         st.integers(0, 2), st.floats(0, 40)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(OPS, st.integers(1, 4), st.integers(0, 3))
def test_any_sequence_keeps_the_caps_and_spares_connected_kernels(ops, cap, per_address):
    """For any order of page requests, kernels starting, pages arriving, websockets
    connecting, kernels dying and time passing: places taken never pass the cap, an address
    never holds more than its unconnected kernels, a connected kernel is never shut down."""
    room, km, clock = make_room(cap=cap, grace=30, per_address=per_address)
    addresses = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    serving: list[str] = []  # addresses of admitted pages without a kernel yet
    bound: list[str] = []
    connected: set[str] = set()
    for op, i, dt in ops:
        address = addresses[i]
        if op == "admit" and room.admit(address) is None:
            serving.append(address)
        elif op == "bind" and serving:
            address = serving.pop(0)
            kernel_id = km.start()
            room.bind(kernel_id, "v", address)
            room.leave(address)
            bound.append(kernel_id)
        elif op == "deliver" and bound:
            room.delivered(bound[i % len(bound)])
        elif op == "connect" and bound:
            kernel_id = bound[i % len(bound)]
            if kernel_id in km.alive:
                room.connected(kernel_id)
                connected.add(kernel_id)
        elif op == "wait":
            clock.now += dt
        elif op == "shut":
            assert not set(shut(room)) & connected
        elif op == "die" and bound:
            km.alive.discard(bound[i % len(bound)])
        assert room.taken() <= cap
        if per_address:
            assert all(room.unconnected_from(a) <= per_address for a in addresses)


# ----- the log: no token in request lines, the refusal's reason on the same line ------------
@given(st.text(st.characters(codec="ascii", exclude_characters="&#%+=?"), min_size=1))
def test_scrub_uri_never_shows_the_token(token):
    uri = f"/api/kernels/k/channels?session_id=abc&token={token}&_xsrf={token}x"
    scrubbed = scrub_uri(uri)
    assert "token=[secret]" in scrubbed and "_xsrf=[secret]" in scrubbed
    assert scrubbed.startswith("/api/kernels/k/channels?")
    # Compare parsed values, not substrings: a token "a" is a substring of "session_id=abc".
    values = parse_qsl(scrubbed.partition("?")[2], keep_blank_values=True)
    assert values == [("session_id", "abc"), ("token", "[secret]"), ("_xsrf", "[secret]")]


class FakeRequest:
    method, remote_ip = "GET", "10.1.2.3"
    uri = "/nothere?token=tok-SECRET-123"

    def request_time(self) -> float:
        return 0.01


class FakeHandler:
    request = FakeRequest()
    _explorer_refusal = "the kernel belongs to another visitor"

    def get_status(self) -> int:
        return 403


def test_a_refused_request_logs_one_line_without_the_token(caplog):
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        log_request(FakeHandler())
    assert [r.getMessage() for r in caplog.records] == [
        "403 GET /nothere?token=[secret] (10.1.2.3) 10.00ms: the kernel belongs to another "
        "visitor"]
    assert caplog.records[0].levelno == logging.WARNING


# ----- a real server, plain HTTP ----------------------------------------------------------
TOKEN = "places-token-93b1"
GRACE_S = 15
CEILING_S = 240  # generous: kernels start slowly on a loaded machine


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A room of two, grace GRACE_S, two unconnected kernels per address, a token."""
    notebook = trivial_notebook(tmp_path_factory.mktemp("places"))
    env = {**checkout_env(), "EXPLORER_TOKEN": TOKEN}
    with room_server(str(notebook), "--preheat", "0", "--max-visitors", "2",
                     "--connect-grace", str(GRACE_S), "--pending-per-address", "2",
                     env=env) as (url, proc):
        port = url.rstrip("/").rsplit(":", 1)[1]
        yield url, proc, artifact_path(f"room-{port}.log")


def wait_log(log, text: str, count: int = 1) -> str:
    deadline = time.monotonic() + CEILING_S
    while log.read_text(errors="replace").count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} never logged"
        time.sleep(0.5)
    return log.read_text(errors="replace")


@pytest.mark.slow
def test_plain_gets_cannot_hold_the_room(places):
    """Three GETs at once from one address (no websocket): two pages, one clear refusal
    (429); the two kernels are shut down after the grace, so the room of two is not kept
    full: a later visitor gets a page."""
    url, proc, log = places
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: Visitor(url, TOKEN).get(), range(3)))
    assert sorted(status for status, _ in answers) == [200, 200, 429], answers
    refusal = next(body for status, body in answers if status == 429)
    assert "2 pages opened from 127.0.0.1 have not connected" in refusal
    assert len(kernels(proc)) == 2
    deadline = time.monotonic() + CEILING_S
    while (status := Visitor(url, TOKEN).get()[0]) != 200:  # 429 until the two are gone
        assert status == 429 and time.monotonic() < deadline, status
        time.sleep(1)
    text = wait_log(log, "never connected within", 2)
    assert TOKEN not in text  # 200, 429 lines: the token is scrubbed
    assert "429 GET /?token=[secret] (127.0.0.1)" in text


@pytest.mark.slow
def test_a_connected_page_keeps_its_place_and_refusals_log_one_line(places):
    """A page whose websocket connected is not shut down after the grace (a later plain
    GET's kernel is); the full page counts every place taken; a websocket refused for
    another visitor's kernel writes one log line and no traceback."""
    url, proc, log = places
    deadline = time.monotonic() + CEILING_S
    while kernels(proc):  # the previous test's last kernel goes after its grace too
        assert time.monotonic() < deadline
        time.sleep(1)
    browser = Visitor(url, TOKEN)
    status, page_html = browser.get()
    assert status == 200
    kept = kernel_id_of(page_html)
    assert browser.open_channels(kept) == 101  # as the page's widget manager does
    hoarder = Visitor(url, TOKEN)
    status, hoarded_html = hoarder.get()
    assert status == 200
    status, full = Visitor(url, TOKEN).get()
    assert status == 503 and "2 of 2 places are taken" in full, full[:400]
    hoarded = kernel_id_of(hoarded_html)
    text = wait_log(log, f"Shut down kernel {hoarded}")
    assert f"Shut down kernel {kept}" not in text
    # Had a slow browser shown that page, its session poll would now show the banner.
    deadline = time.monotonic() + CEILING_S  # the log line comes as the shutdown starts
    while (answer := hoarder.get(f"explorer/api/session/{hoarded}")) != (
            200, '{"alive": false, "restarts": 0}'):
        assert answer[0] == 200 and time.monotonic() < deadline, answer
        time.sleep(0.5)
    alive = " ".join(" ".join(k.cmdline()) for k in kernels(proc))
    assert kept in alive
    lines_before = len(text.splitlines())
    assert hoarder.open_channels(kept) == 403
    text = wait_log(log, "the kernel belongs to another visitor")
    new = [line for line in text.splitlines()[lines_before:] if "IPKernelApp" not in line]
    # the refusal writes no traceback (earlier lines may hold a shut-down kernel's own:
    # ipykernel can race its sockets on shutdown, seen once in CI); the token never shows
    assert not any("Traceback" in line for line in new) and TOKEN not in text, new
    assert [line for line in new if "channels" in line] == [
        line for line in new if "403 GET" in line], new
    assert len([line for line in new if "403 GET" in line]) == 1, new


@pytest.mark.parametrize("argv, message", [
    (["--connect-grace", "-3"], "--connect-grace: '-3' is not a whole number of seconds"),
    (["--connect-grace", "soon"], "--connect-grace: 'soon' is not a whole number"),
    (["--pending-per-address", "-1"], "--pending-per-address: -1 is negative"),
])
def test_bad_room_options_are_refused_naming_the_value(argv, message, capsys):
    from explorer.cli.dashboard_args import room_argv
    from explorer.cli.main import build_parser

    parser, subparsers = build_parser()
    args = parser.parse_args(["dashboard", *argv])
    with pytest.raises(SystemExit) as exit_info:
        room_argv(args, subparsers["dashboard"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_room_options_reach_the_server():
    from explorer.cli.dashboard_args import room_argv
    from explorer.cli.main import build_parser

    parser, subparsers = build_parser()
    args = parser.parse_args(["dashboard", "--connect-grace", "30", "--pending-per-address", "5"])
    assert room_argv(args, subparsers["dashboard"]) == [
        "--ExplorerVoila.connect_grace=30", "--ExplorerVoila.pending_per_address=5"]
