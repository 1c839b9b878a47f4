"""SMTP peer for aft's tests: three listeners on 127.0.0.1 that store every accepted
message as a `.eml` file in one folder.

  plain     no TLS, no auth
  starttls  STARTTLS required, then AUTH PLAIN/LOGIN required
  tls       implicit TLS from the first byte, AUTH required

Each file starts with `X-Aft-Listener`, `X-Aft-Mail-From`, `X-Aft-Rcpt-To` and
`X-Aft-Auth-User` lines, then the message exactly as received. Files appear atomically
(written as .tmp, then renamed).

Usage: smtp_server.py DIR CERT KEY USER PASS PLAIN_PORT STARTTLS_PORT TLS_PORT
"""

import asyncio
import os
import ssl
import sys
import time
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    def __init__(self, folder, listener):
        self.folder = folder
        self.listener = listener

    async def handle_DATA(self, server, session, envelope):
        user = ""
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            user = session.auth_data.login.decode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex}.eml"
        tmp = os.path.join(self.folder, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(f"X-Aft-Listener: {self.listener}\r\n".encode())
            f.write(f"X-Aft-Mail-From: {envelope.mail_from}\r\n".encode())
            f.write(f"X-Aft-Rcpt-To: {','.join(envelope.rcpt_tos)}\r\n".encode())
            f.write(f"X-Aft-Auth-User: {user}\r\n".encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.folder, name))
        return "250 OK stored"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return check


async def main():
    folder, cert, key, user, password, p_plain, p_starttls, p_tls = sys.argv[1:9]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    auth = authenticator(user, password)
    loop = asyncio.get_running_loop()
    await loop.create_server(
        lambda: SMTP(Store(folder, "plain"), hostname="localhost"),
        "127.0.0.1",
        int(p_plain),
    )
    await loop.create_server(
        lambda: SMTP(
            Store(folder, "starttls"),
            hostname="localhost",
            tls_context=ctx,
            require_starttls=True,
            authenticator=auth,
            auth_required=True,
        ),
        "127.0.0.1",
        int(p_starttls),
    )
    await loop.create_server(
        lambda: SMTP(
            Store(folder, "tls"),
            hostname="localhost",
            authenticator=auth,
            auth_required=True,
            auth_require_tls=False,
        ),
        "127.0.0.1",
        int(p_tls),
        ssl=ctx,
    )
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
