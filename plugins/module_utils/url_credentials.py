# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The one rule for credentials inside a URL: which URLs carry them, and how a message shows one."""

from __future__ import annotations

import re

# http(s) with any user part (a token as user name is a secret too), or any scheme with user:password.
_WITH_CREDENTIALS = re.compile(r"^(https?://[^/@]*@|[a-z0-9+.-]+://[^/@:]*:[^/@]*@)", re.IGNORECASE)
_USERINFO = re.compile(r"^([a-z0-9+.-]+://)[^/@]*@", re.IGNORECASE)


def has_credentials(url):
    """True when ``url`` carries a user:password (or, for http(s), any user) part."""
    return bool(_WITH_CREDENTIALS.match(str(url)))


def masked(url):
    """``url`` with its user:password part replaced by ``***``, for messages and logs."""
    return _USERINFO.sub(r"\1***@", str(url))
