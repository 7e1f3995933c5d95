"""Who may connect, and who may run commands: the default user's password
(`requirepass`, AUTH, HELLO's AUTH) and protected mode.

Part of chapter 21. Every connection starts as the user "default"
(acl.py), which needs no password until `requirepass` gives it one. A
connection starts authenticated if the default user needs no password;
otherwise every command but AUTH, HELLO, QUIT and RESET is refused with
-NOAUTH until AUTH succeeds.

Passwords are kept as SHA-256 digests, and AUTH compares digests with
hmac.compare_digest, whose time does not depend on where two digests
differ; a wrong guess costs one hash and an ACL LOG entry (the log is
bounded), so guessing from many connections neither slows others nor
grows the server. (CONFIG GET requirepass answers the password as it was
set, as Redis does: that text is what an operator configured.)

Protected mode: a server with no password that listens on more than the
loopback interface (--bind 0.0.0.0) would let anyone on the network run
FLUSHALL. While `protected-mode` is yes (the default) and the default user
needs no password, a client from any address but 127.0.0.1 and ::1 gets
Redis's -DENIED explanation and is closed.
"""

from __future__ import annotations

from typing import Any

from common.chapters import load_chapter_module

acl = load_chapter_module(21, "acl")  # the users

DENIED = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the "
    "default user. In this mode connections are only accepted from the loopback interface. If you want to connect "
    "from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode "
    "sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the "
    "same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. "
    "Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by "
    "editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the "
    "server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' "
    "option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above "
    "things in order for the server to start accepting connections from the outside."
)  # Redis's text, its typo included: clients and tests match it
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NO_PASSWORD_CONFIGURED = ("ERR AUTH <password> called without any password configured for the default user. "
                          "Are you sure your configuration is correct?")  # fmt: skip
HELLO_NOAUTH = ("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
                "<user> <pass> option can be used to authenticate the client and select the RESP protocol version "
                "at the same time")  # fmt: skip
LOOPBACK = ("127.0.0.1", "::1")  # what Redis's islocalClient accepts: not the rest of 127.0.0.0/8


def default_user() -> Any:
    return acl.users[b"default"]


def needs_password() -> bool:
    """Whether a new connection must authenticate (Redis's authRequired, before AUTH)."""
    user = default_user()
    return not user.nopass or not user.enabled


requirepass = b""  # as CONFIG GET shows it
protected_mode = True


def set_requirepass(text: bytes) -> str | None:
    """CONFIG SET requirepass: the default user's only password, or none if
    empty (Redis applies "resetpass >password", or "nopass")."""
    global requirepass
    requirepass = text
    user = default_user()
    user.digests = [acl.digest_hex(text)] if text else []
    user.nopass = not text
    return None


def set_protected_mode(text: bytes) -> str | None:
    global protected_mode
    value = text.lower()
    if value not in (b"yes", b"no"):
        return "argument must be 'yes' or 'no'"
    protected_mode = value == b"yes"
    return None


def refused_as_unprotected(peer_ip: str) -> bool:
    """Whether a client from `peer_ip` is refused by protected mode."""
    return protected_mode and default_user().nopass and peer_ip not in LOOPBACK


def authenticate(username: bytes, password: bytes) -> bool:
    """AUTH's check: a user that is on, and one of its passwords (any, if it has nopass)."""
    user = acl.users.get(username)
    return user is not None and user.accepts(password)
