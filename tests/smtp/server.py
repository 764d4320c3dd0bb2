"""A real SMTP server for the integration tests (aiosmtpd).

Listens on 127.0.0.1:PORT in one of three modes: `plain`, `starttls`
(STARTTLS offered and required before MAIL) or `smtps` (TLS from the
first byte). With --auth USER:PASSWORD, AUTH PLAIN/LOGIN is required.
Every accepted mail is written to DIR as N.json (atomically, by rename):
the envelope, the decoded subject, text and HTML parts, and whether the
session was encrypted and authenticated. Prints "ready" once it accepts
connections, and stops when its standard input closes (so a test that
dies takes it along).
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "raw": envelope.original_content.decode("utf-8", "replace"),
        }
        with self.lock:
            self.count += 1
            name = f"{self.count:06d}.json"
        tmp = os.path.join(self.directory, name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["plain", "starttls", "smtps"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    args = parser.parse_args()

    kwargs = {}
    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    if args.mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif args.mode == "smtps":
        kwargs.update(ssl_context=context)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and \
                auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)

        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=args.mode != "plain")

    controller = Controller(Store(args.dir), hostname="127.0.0.1", port=args.port,
                            server_hostname="localhost", **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
