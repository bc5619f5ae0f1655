"""What the service may show of its own configuration: one place that removes credentials
from URIs (``redis://:password@host`` -> ``redis://:***@host``) and, for answers to clients,
absolute filesystem paths (reduced to their last component).

Adapters apply `redact` to every URI they put into an error message, so neither a log line
nor a response carries a store or Milvus password; `public` is applied to every error body
and readiness answer, which unauthenticated clients read. `service.logs` redacts every log
line's message and traceback, for messages built elsewhere (a library's own exception text).
"""

from __future__ import annotations

import re

# scheme://[user][:password]@ -> keep the user, hide the password
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:@/\s]*):[^@/\s]+@")
_USER_ONLY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:@/\s]+)@")
# an absolute path that is not part of a URL (not preceded by ':', '/' or a word character)
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~])/(?:[^\s/'\",;)]+/)+(?P<name>[^\s/'\",;)]*)")
HIDDEN = "***"


def redact(text: str) -> str:
    """``text`` with the password (or a bare token in the user part) of every URI hidden."""
    text = _CREDENTIALS.sub(rf"\g<scheme>\g<user>:{HIDDEN}@", text)
    return _USER_ONLY.sub(rf"\g<scheme>{HIDDEN}@", text)


def public(text: str) -> str:
    """``text`` fit for a client: credentials hidden and absolute paths reduced to their last
    component (``/srv/bundles/v7/ranker.onnx`` -> ``ranker.onnx``)."""
    return _ABSOLUTE_PATH.sub(lambda m: m["name"] or "/", redact(text))
