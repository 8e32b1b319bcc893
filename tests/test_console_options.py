"""The console's options: loopback by default, HTTPS required off loopback, clear errors naming the flag."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from linebridge.console.config import ConsoleOptions
from linebridge.console.live import plot_message
from tests.console_helpers import cli


def test_the_console_listens_on_loopback_by_default():
    options = ConsoleOptions()
    assert (options.host, options.port, options.loopback, options.https) == ("127.0.0.1", 8080, True, False)


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "192.168.1.10:8080", "[::]:8080", "console.plant:80"])
def test_a_non_loopback_address_needs_tls(listen):
    with pytest.raises(
        ValidationError, match="not a loopback address; the console serves it only over HTTPS"
    ):
        ConsoleOptions(listen=listen)
    assert ConsoleOptions(listen=listen, tls_cert="c.pem", tls_key="k.pem").https


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listen": "8080"}, "expected HOST:PORT"),
        ({"listen": "127.0.0.1:99999"}, "expected HOST:PORT"),
        ({"tls_cert": "c.pem"}, "tls_cert and tls_key go together"),
        ({"nonsense": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, message):
    with pytest.raises(ValidationError, match=message):
        ConsoleOptions(**options)


async def test_the_command_refuses_a_public_address_without_tls():
    code, out, err = await cli("console", "--listen", "0.0.0.0:8080")
    assert code == 2 and out == ""
    assert (
        "console: listen: 0.0.0.0:8080 is not a loopback address; the console serves it only over HTTPS"
        in err
    )


def test_a_plot_message_holds_columns_not_samples():
    import json
    import struct

    import numpy as np

    data = plot_message(["a", "b"], np.array([0, 1, 0]), np.array([1e9, 2e9, 3e9]), np.array([0.5, 1.5, 2.5]))
    size = struct.unpack("<I", data[:4])[0]
    header = json.loads(data[4 : 4 + size])
    start = 4 + size + (-(4 + size)) % 8
    assert header["n"] == 3 and header["paths"] == ["a", "b"] and start % 8 == 0
    assert np.frombuffer(data, "<f8", 3, start).tolist() == [1000.0, 2000.0, 3000.0]
    assert np.frombuffer(data, "<f8", 3, start + 24).tolist() == [0.5, 1.5, 2.5]
    assert np.frombuffer(data, "<i4", 3, start + 48).tolist() == [0, 1, 0]


def test_visits_without_a_login_cannot_grow_the_session_table_without_bound():
    from linebridge.console.sessions import MAX_LOGGED_OUT, SessionStore

    store = SessionStore(ConsoleOptions())
    first = store.new()
    sessions = [store.new() for _ in range(MAX_LOGGED_OUT + 50)]
    assert len(store._sessions) == MAX_LOGGED_OUT
    assert store.get(first.id) is None and store.get(sessions[-1].id) is sessions[-1]


async def test_over_https_the_session_cookie_is_secure(tmp_path):
    import asyncio
    import ssl
    import urllib.error
    import urllib.request

    from linebridge.security.certs import CertDir
    from tests.console_helpers import start_console
    from tests.security_helpers import certs_init

    certs_init(tmp_path / "pki")
    pki = CertDir(tmp_path / "pki")
    cert, key = pki.server
    server = await start_console("127.0.0.1:1", tls_cert=str(cert), tls_key=str(key))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(pki.ca[0]))
        answer = await asyncio.to_thread(urllib.request.urlopen, server.url + "api/session", context=context)
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
        with pytest.raises(urllib.error.URLError) as refused:  # a client that does not trust the CA
            await asyncio.to_thread(urllib.request.urlopen, server.url, context=ssl.create_default_context())
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    finally:
        await server.stop()
