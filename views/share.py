"""Share the page with a class: its link, with the whole state, as a QR code to scan from a projected screen.

The address in the teacher's browser is often ``localhost``, which on a student's laptop means
the student's own machine; the link therefore uses a host name the teacher can change, by
default this machine's address on the local network, and the page says so when the server
only listens on this machine (``server.address``), where no link can help.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import segno
import streamlit as st

from views import state
from views.i18n import _

# Names no other device can use for this machine: loopback, and the "every interface" wildcards.
UNREACHABLE = frozenset({"localhost", "::1", "0.0.0.0", "::", ""})
HOST = "_share_host"  # plain session state: the widgets that edit it differ per place
# Pixels per QR module: a link with a headline is a version 8-12 code (49-65 modules plus the
# quiet zone), so 10 px gives 700-850 px, which a phone reads from the back of a classroom.
MODULE_PX = 10


def page_link(scheme: str, host: str, path: str, query: Mapping[str, str]) -> str:
    """The page's address on ``host`` with ``query`` as its parameters (spaces as %20, not +)."""
    return urlunsplit((scheme or "http", host, path or "/", urlencode(query, quote_via=quote), ""))


def is_unreachable(host: str) -> bool:
    """Whether ``host`` (with or without a port) cannot name this machine from another device."""
    name = urlsplit(f"//{host}").hostname or ""
    return name in UNREACHABLE or name.startswith("127.")


def machine_address() -> str:
    """This machine's address on the network it would reach others through, or its host name."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a documentation address: UDP connect sends nothing
            address = probe.getsockname()[0]
    except OSError:
        address = ""
    return address if address and not address.startswith("127.") else socket.gethostname()


def _browser_url() -> tuple[str, str, str]:
    """(scheme, host:port, path) of the page as the teacher's browser sees it."""
    url = st.context.url
    if url:
        parts = urlsplit(url)
        return parts.scheme, parts.netloc, parts.path
    return "http", st.context.headers.get("Host", ""), "/"


def default_host() -> str:
    """The browser's host when students can reach it too, else this machine's address with the same port."""
    _scheme, host, _path = _browser_url()
    if not is_unreachable(host):
        return host
    port = urlsplit(f"//{host}").port or st.get_option("server.port")
    return f"{machine_address()}:{port}"


def listens_only_locally() -> bool:
    """Whether the server was started for this machine alone (``--server.address 127.0.0.1``); unset means every interface."""
    address = st.get_option("server.address") or ""
    return address == "localhost" or address == "::1" or address.startswith("127.")


def current_link(host: str) -> str:
    """The link that reproduces what this session shows now, on ``host``.

    Everything but presenter mode: that is for the projector, not for 30 laptops.
    """
    scheme, _host, path = _browser_url()
    query = {name: value for name, value in state.current_query().items() if name != "present"}
    return page_link(scheme, host, path, query)


def qr_png(link: str, module_px: int = MODULE_PX) -> bytes:
    """``link`` as a black-on-white QR code (error correction M), ``module_px`` pixels per module."""
    buffer = io.BytesIO()
    segno.make(link, error="m", micro=False).save(buffer, kind="png", scale=module_px, border=4, dark="black", light="white")
    return buffer.getvalue()


def show_share(place: str) -> None:
    """The host field, notes, the QR code and the link; ``place`` keeps the widgets of each place apart."""
    if HOST not in st.session_state:
        st.session_state[HOST] = default_host()
    field = f"{place}-share-host"
    st.session_state[field] = st.session_state[HOST]

    def keep_host() -> None:
        st.session_state[HOST] = st.session_state[field].strip()

    st.text_input(
        _("Server address the students can reach"),
        key=field,
        on_change=keep_host,
        help=_("The name or network address of this computer, with the port. Students' devices must be on a network that reaches it."),
    )
    host = st.session_state[HOST]
    if listens_only_locally():
        st.warning(
            _(
                "This server only listens on this computer (server.address = {address}), so students cannot open any link to it. "
                "Restart it without that setting, or with --server.address 0.0.0.0."
            ).format(address=st.get_option("server.address"))
        )
    elif is_unreachable(host):
        st.warning(_("“{host}” means each student's own device. Type this computer's name or network address instead.").format(host=host))
    link = current_link(host)
    try:
        st.image(qr_png(link), caption=_("Scan to open this page as you see it now"), width=480)
    except segno.encoder.DataOverflowError:
        st.warning(_("The link is too long for a QR code ({length:,} characters): shorten the text, or share the link below.").format(length=len(link)))
    st.code(link, language=None, wrap_lines=True)
    if state.is_long_text():
        st.caption(
            _("The text is longer than {limit:,} characters, so it is not in the link: students will see the model's first example instead.").format(
                limit=state.URL_TEXT_LIMIT
            )
        )


def share_button() -> None:
    """A button that opens the share dialog over the page."""
    if st.button(_("Share with the class"), key="share", icon=":material/qr_code_2:", width="stretch"):
        st.dialog(_("Share with the class"), width="large")(show_share)("dialog")
