"""Hostile reports and archives: each is refused with a clear error, in bounded memory, quickly.

Memory is the peak RSS growth of this process while the input is read (sampled every 2 ms by a
thread; lxml hands control back to Python at every event and every read, so samples keep coming).
The bound is generous (64 MiB) but far below what any of these inputs would cost if expanded.
"""

from __future__ import annotations

import gc
import http.server
import io
import threading
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from flakeguard.junit import ArchiveLimits, JUnitError, ParseLimits, read_artifact
from flakeguard.junit import parse_report as _parse_report
from flakeguard.testing.reports import zip_bomb, zip_many_members, zip_members

MEMORY_BOUND = 64 * 1024 * 1024


class Generated(io.RawIOBase):
    """A report produced on the fly (`head` + `chunk` * `repeat` + `tail`), never held in memory."""

    def __init__(self, head: bytes, chunk: bytes, repeat: int, tail: bytes) -> None:
        super().__init__()
        self._parts: Iterator[bytes] = iter([head, *(chunk for _ in range(repeat)), tail])
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size > 0 else 1 << 16
        while len(self._buf) < want:
            part = next(self._parts, None)
            if part is None:
                break
            self._buf += part
        out, self._buf = self._buf[:want], self._buf[want:]
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def peak_rss_growth(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run `fn`; (its result or raised exception, peak RSS growth in bytes while it ran)."""
    gc.collect()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result: Any = fn()
    except Exception as exc:
        result = exc
    finally:
        done.set()
        sampler.join()
    peak = max(peak, proc.memory_info().rss)
    return result, peak - base


def refused(data: bytes | io.RawIOBase, limits: ParseLimits = ParseLimits()) -> JUnitError:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    result, growth = peak_rss_growth(lambda: list(_parse_report(stream, source="evil.xml", limits=limits)))  # type: ignore[arg-type]
    assert isinstance(result, JUnitError), f"not refused: {result!r}"
    assert "evil.xml" in str(result)
    assert growth < MEMORY_BOUND, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    return result


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: typing.ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'<!ENTITY x "pwned">')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# --- XML ------------------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + ']>\n<testsuites><testsuite name="&lol9;"><testcase name="&lol9;"/></testsuite></testsuites>\n'
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs(encoding: str) -> None:
    doc = BILLION_LAUGHS.replace('version="1.0"?', f'version="1.0" encoding="{encoding}"?')
    err = refused(doc.encode(encoding))
    assert err.code == "dtd_forbidden"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_entity_to_local_file(tmp_path: Path, encoding: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<!DOCTYPE testsuites [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
        '<testsuites><testsuite name="s"><testcase name="&xxe;"><system-out>&xxe;</system-out>'
        "</testcase></testsuite></testsuites>"
    )
    err = refused(doc.encode(encoding))
    assert err.code == "dtd_forbidden"
    assert "TOP-SECRET" not in str(err)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize(
    "template",
    [
        '<!DOCTYPE t [<!ENTITY xxe SYSTEM "{url}/entity">]><testsuites><testcase name="&xxe;"/></testsuites>',
        '<!DOCTYPE t SYSTEM "{url}/external.dtd"><testsuites><testcase name="x"/></testsuites>',
        '<!DOCTYPE t [<!ENTITY % p SYSTEM "{url}/param">%p;]><testsuites><testcase name="x"/></testsuites>',
        '<testsuites xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{url}/xi"/>'
        '<testcase name="x"/></testsuites>',
    ],
    ids=["entity", "external-dtd", "parameter-entity", "xinclude"],
)
def test_no_network_request_is_ever_made(
    loopback_server: tuple[str, list[str]], template: str, encoding: str
) -> None:
    url, hits = loopback_server
    doc = f'<?xml version="1.0" encoding="{encoding}"?>\n' + template.format(url=url)
    try:
        list(_parse_report(io.BytesIO(doc.encode(encoding)), source="evil.xml"))
    except JUnitError as err:
        assert err.code == "dtd_forbidden"
    time.sleep(0.05)
    assert hits == []


def test_ten_thousand_deep_nesting() -> None:
    deep = Generated(b"<testsuites>", b"<testsuite name='s'>", 10_000, b"</testsuites>")
    assert refused(deep).code == "too_deep"
    junk = Generated(b"<testsuites><testsuite><testcase>", b"<a>", 10_000, b"")
    assert refused(junk).code == "too_deep"


def test_fifty_megabyte_attribute() -> None:
    big = Generated(
        b"<testsuites><testsuite name='s'><testcase name='", b"A" * 65536, 800, b"'/></testsuites>"
    )
    err = refused(big)
    assert err.code == "too_large"


def test_huge_text_run_and_element_spam() -> None:
    text = Generated(b"<testsuites><testsuite><system-out>", b"x" * 65536, 800, b"</system-out></testsuites>")
    assert refused(text).code == "too_large"

    # 800,000 stray elements (~80 MB as a tree): each is freed as it ends, the report stays valid.
    spam = Generated(
        b"<testsuites><testsuite name='s'>", b"<p/>" * 16000, 50, b"<testcase/></testsuite></testsuites>"
    )
    result, growth = peak_rss_growth(lambda: list(_parse_report(spam, source="spam.xml")))  # type: ignore[arg-type]
    assert not isinstance(result, Exception) and len(result) == 1
    assert growth < MEMORY_BOUND


def test_many_outputs_in_one_testcase_stay_bounded() -> None:
    chunk = b"<system-out>" + b"y" * 60_000 + b"</system-out>"
    doc = Generated(
        b"<testsuites><testsuite><testcase name='t'>", chunk, 2_000, b"</testcase></testsuite></testsuites>"
    )
    result, growth = peak_rss_growth(lambda: list(_parse_report(doc, source="big.xml")))  # type: ignore[arg-type]
    assert not isinstance(result, Exception)
    assert result[0].system_out is not None and len(result[0].system_out) <= 64 * 1024
    assert growth < MEMORY_BOUND


@pytest.mark.parametrize(
    "doc",
    [
        b"<testsuites><testcase name='\xc3\x28'/></testsuites>",
        b"<testsuites><testcase name='ok'/><testcase name='\xff'/></testsuites>",
        b'<?xml version="1.0" encoding="UTF-8"?><testsuites><testcase name="\xed\xa0\x80"/></testsuites>',
    ],
)
def test_invalid_utf8(doc: bytes) -> None:
    assert refused(doc).code == "bad_encoding"


# --- archives -----------------------------------------------------------------------------------


def archive_refusals(data: bytes, limits: ArchiveLimits = ArchiveLimits()) -> list[tuple[str | None, str]]:
    result, growth = peak_rss_growth(lambda: read_artifact(data, artifact="evil", archive_limits=limits))
    assert not isinstance(result, Exception), result
    assert growth < MEMORY_BOUND, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    return [(r.member, r.reason_code) for r in result.refusals]


def test_one_gigabyte_zip_bomb() -> None:
    bomb = zip_bomb("bomb.xml", 1 << 30)
    assert len(bomb) < 8 << 20
    started = time.monotonic()
    assert archive_refusals(bomb) == [("bomb.xml", "zip_bomb")]
    # Without the ratio limit, the member-size and total limits still stop it.
    assert archive_refusals(bomb, ArchiveLimits(max_compression_ratio=1e9, max_member_bytes=8 << 20)) == [
        ("bomb.xml", "zip_bomb")
    ]
    assert archive_refusals(
        bomb, ArchiveLimits(max_compression_ratio=1e9, max_total_uncompressed_bytes=8 << 20)
    ) == [("bomb.xml", "zip_bomb")]
    assert time.monotonic() - started < 20


def test_hundred_thousand_tiny_members() -> None:
    many = zip_many_members(100_000)
    assert archive_refusals(many) == [(None, "too_many_members")]


def test_member_named_etc_passwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = b"<testsuites><testsuite name='s'><testcase name='t'/></testsuite></testsuites>"
    data = zip_members(
        {"../../etc/passwd": b"root:x:0:0", "../../evil.xml": good, "/abs.xml": good, "ok.xml": good}
    )
    result = read_artifact(data, artifact="evil")
    assert [(r.member, r.reason_code) for r in result.refusals] == [
        ("../../etc/passwd", "unsafe_member_name"),
        ("../../evil.xml", "unsafe_member_name"),
        ("/abs.xml", "unsafe_member_name"),
    ]
    assert [m.member for m in result.members] == ["ok.xml"]
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere near the working directory


def test_lying_member_count_in_end_record() -> None:
    many = bytearray(zip_many_members(20_000))
    # Claim 1 entry in the end-of-central-directory record; the directory size still gives it away.
    many[-12:-10] = (1).to_bytes(2, "little")
    many[-14:-12] = (1).to_bytes(2, "little")
    assert archive_refusals(bytes(many)) == [(None, "too_many_members")]


def test_hostile_members_do_not_stop_the_good_ones() -> None:
    good = b"<testsuites><testsuite name='s'><testcase name='t'/></testsuite></testsuites>"
    data = zip_members(
        {
            "a.xml": good,
            "laughs.xml": BILLION_LAUGHS.encode(),
            "bad-utf8.xml": b"<testsuites><testcase name='\xff'/></testsuites>",
            "deep.xml": b"<testsuites>" + b"<testsuite>" * 300 + b"</testsuite>" * 300 + b"</testsuites>",
            "z.xml": good,
        }
    )
    result = read_artifact(data, artifact="evil")
    assert [m.member for m in result.members] == ["a.xml", "z.xml"]
    assert [(r.member, r.reason_code) for r in result.refusals] == [
        ("laughs.xml", "dtd_forbidden"),
        ("bad-utf8.xml", "bad_encoding"),
        ("deep.xml", "too_deep"),
    ]
