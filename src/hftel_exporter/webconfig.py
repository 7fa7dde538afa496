"""The web configuration file of Prometheus exporters: TLS, basic auth and extra response headers.

The format is the exporter-toolkit's (docs/web-configuration.md in prometheus/exporter-toolkit), so one file
serves node_exporter and hftel alike. It is read once, at start: a change needs a restart. Anything hftel
cannot honour exactly is refused with a `WebConfigError` rather than ignored, so a file never quietly means
less security than it says. Relative paths resolve against the file's directory, as in the toolkit. No
password or hash ever appears in a message, a log or a repr.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import ssl
import struct
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import bcrypt
import yaml

from hftel.errors import HftelError


class WebConfigError(HftelError):
    """A web configuration file that cannot be used; the message names the file and the key path."""


# client_auth_type -> verify mode. Python's ssl cannot ask for a client certificate without verifying it,
# so RequestClientCert asks for none: hftel decides nothing on an unverified certificate, so either way
# anyone may connect. RequireAnyClientCert (old name RequireClientCert) would need an unverified
# certificate to be *required*: refused, not weakened.
CLIENT_AUTH_TYPES: Mapping[str, ssl.VerifyMode | None] = MappingProxyType({
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "RequireAnyClientCert": None,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
})
_LEGACY_CLIENT_AUTH = {"RequireClientCert": "RequireAnyClientCert"}

TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = MappingProxyType({
    "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3,
})

# The toolkit's closed list of configurable headers, with the values allowed where it has a list.
EXTRA_HEADERS: Mapping[str, tuple[str, ...] | None] = MappingProxyType({
    "Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None, "Content-Security-Policy": None,
})

# Keys of the format that hftel parses but cannot honour; empty values (the defaults) are accepted.
_UNSUPPORTED = {
    "tls_server_config.cert": "inline certificates are not supported; use cert_file",
    "tls_server_config.client_ca": "inline CA certificates are not supported; use client_ca_file",
    "tls_server_config.key": "inline keys are not supported (Python's ssl reads keys from files); use key_file",
    "tls_server_config.cipher_suites":
        "not supported: hftel does not map Go's cipher suite names to OpenSSL's; remove it for the defaults",
    "tls_server_config.curve_preferences":
        "not supported: Python's ssl sets one curve, not a preference list; remove it for the defaults",
    "tls_server_config.client_allowed_sans":
        "not supported by hftel; issue client certificates from a dedicated CA instead",
    "rate_limit": "not supported by hftel; rate-limit at a reverse proxy if you need it",
}
_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "client_ca", "min_version",
             "max_version", "prefer_server_cipher_suites", "cert", "key", "cipher_suites",
             "curve_preferences", "client_allowed_sans")
_HTTP_KEYS = ("http2", "headers")
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True)
class TLSServerConfig:
    """The `tls_server_config` section, paths made absolute; `WebConfig.ssl_context()` uses it."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    prefer_server_cipher_suites: bool = True


class WebConfig:
    """TLS, basic auth and extra headers for the exporter's HTTP server, from a web config file.

        web = load_web_config("/etc/hftel/web-config.yml")  # load_web_config(None): plain HTTP
        context = web.ssl_context()                           # None when TLS is off
        if web.auth_required and not web.authenticate("prometheus", "secret"):
            ...                                               # answer 401

    `authenticate` may be called from any number of threads. A successful check is remembered as an HMAC
    of (user, password) under a key made at start, so a scrape every second pays bcrypt once.
    """

    def __init__(self, *, path: Path | None = None, tls: TLSServerConfig | None = None,
                 headers: Mapping[str, str] | None = None, users: Mapping[str, bytes] | None = None,
                 notes: tuple[str, ...] = ()) -> None:
        self.path = path
        self.tls = tls
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers or {}))
        self.notes = notes  # what is accepted but not honoured, for the exporter to log at start
        self._users = dict(users or {})
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}  # user -> HMAC of the password that last passed bcrypt
        self._bcrypt_lock = threading.Lock()  # one bcrypt at a time: a password flood uses one core

    @property
    def auth_required(self) -> bool:
        """True when `basic_auth_users` names at least one user."""
        return bool(self._users)

    @property
    def users(self) -> tuple[str, ...]:
        """The configured user names (never their hashes)."""
        return tuple(sorted(self._users))

    def ssl_context(self) -> ssl.SSLContext | None:
        """A fresh server-side context, reading the files again; None when TLS is not configured."""
        return None if self.tls is None else _build_context(self.tls, _Where(self.path))

    def authenticate(self, user: str, password: str | bytes) -> bool:
        """Whether the pair is allowed; always True when no users are configured."""
        if not self._users:
            return True
        secret = password.encode() if isinstance(password, str) else password
        name = user.encode("utf-8", "surrogateescape")
        mac = hmac.new(self._cache_key, struct.pack(">I", len(name)) + name + secret, hashlib.sha256).digest()
        stored = self._users.get(user)
        remembered = self._verified.get(user)
        if stored is not None and remembered is not None and hmac.compare_digest(remembered, mac):
            return True
        # An unknown user is checked against a real hash too, so timing does not tell users apart.
        reference = stored if stored is not None else next(iter(self._users.values()))
        with self._bcrypt_lock:
            try:
                matches = bcrypt.checkpw(secret, reference)
            except ValueError:  # longer than bcrypt's 72 bytes: no hash can match it
                matches = False
        if matches and stored is not None:
            self._verified[user] = mac
            return True
        return False

    def __repr__(self) -> str:
        return (f"WebConfig(path={str(self.path) if self.path else None!r}, tls={self.tls!r}, "
                f"users={list(self.users)!r}, headers={sorted(self.headers)!r})")


def load_web_config(path: str | os.PathLike[str] | None) -> WebConfig:
    """Reads and checks a web config file: certificates load, hashes are bcrypt. None: plain HTTP."""
    if path is None:
        return WebConfig()
    where = _Where(Path(path).absolute())
    try:
        text = where.path.read_bytes()
    except OSError as exc:
        raise where.error("", f"cannot read the file: {exc.strerror}") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise where.error("", _yaml_problem(exc)) from None
    top = where.mapping({} if document is None else document, "", _TOP_KEYS)
    notes: list[str] = []
    tls = _parse_tls(where.mapping(top.get("tls_server_config"), "tls_server_config", _TLS_KEYS), where, notes)
    http = where.mapping(top.get("http_server_config"), "http_server_config", _HTTP_KEYS)
    if "http2" in http:
        where.typed(http["http2"], "http_server_config.http2", bool, "true or false")
        notes.append("http_server_config.http2 is accepted and ignored: hftel serves HTTP/1.1")
    config = WebConfig(path=where.path, tls=tls, notes=tuple(notes),
                       headers=_parse_headers(http.get("headers"), where),
                       users=_parse_users(top.get("basic_auth_users"), where))
    config.ssl_context()  # the certificates, key and CAs load now, or the error says why
    return config


class _Where:
    """The file being read, for messages: `web config FILE: KEY.PATH: problem`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path if path is not None else Path("<none>")

    def error(self, key: str, problem: str) -> WebConfigError:
        return WebConfigError(f"web config {self.path}: {key + ': ' if key else ''}{problem}")

    def typed(self, value: Any, key: str, kind: type, name: str) -> Any:
        if not isinstance(value, kind):
            raise self.error(key, f"expected {name}, got {type(value).__name__}")
        return value

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...] | None = None) -> dict[Any, Any]:
        if value is None:
            return {}
        self.typed(value, key or "(top level)", dict, "a mapping")
        for name, item in value.items() if allowed is not None else ():
            path = f"{key}.{name}" if key else str(name)
            if name not in allowed:
                raise self.error(path, f"unknown key (expected one of: {', '.join(allowed)})")
            if path in _UNSUPPORTED and item not in (None, "", [], {}):
                raise self.error(path, _UNSUPPORTED[path])
        return value

    def file(self, value: Any, key: str) -> Path:
        path = self.path.parent / self.typed(value, key, str, "a file name")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise self.error(key, f"cannot read {path}: {exc.strerror}") from None
        return path

    def choice(self, value: Any, key: str, choices: Mapping[str, Any]) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value


def _parse_tls(section: dict[str, Any], where: _Where, notes: list[str]) -> TLSServerConfig | None:
    present = {key: value for key, value in section.items() if value not in (None, "", [])}
    if not present:
        return None
    for key in ("cert_file", "key_file"):
        if key not in present:
            raise where.error(f"tls_server_config.{key}", "missing: TLS needs cert_file and key_file")
    key = "tls_server_config.client_auth_type"
    auth = present.get("client_auth_type", "NoClientCert")
    auth = _LEGACY_CLIENT_AUTH.get(auth, auth) if isinstance(auth, str) else auth
    mode = CLIENT_AUTH_TYPES[where.choice(auth, key, CLIENT_AUTH_TYPES)]
    if mode is None:
        raise where.error(key, f"{auth} is not supported: Python's ssl cannot accept a client certificate "
                               "without verifying it; use RequireAndVerifyClientCert with client_ca_file")
    if auth == "RequestClientCert":
        notes.append(f"{key}: RequestClientCert asks for no certificate (Python's ssl cannot ask without "
                     "verifying); access is the same, as hftel does not use it")
    ca_file = None
    if "client_ca_file" in present:
        ca_file = where.file(present["client_ca_file"], "tls_server_config.client_ca_file")
        if auth == "NoClientCert":
            raise where.error(key, "client_ca_file is set but client_auth_type is NoClientCert")
    if mode != ssl.CERT_NONE and ca_file is None:
        raise where.error("tls_server_config.client_ca_file", f"{auth} needs client_ca_file (hftel does not "
                          "trust the system's CAs to issue client certificates)")
    low, high = (TLS_VERSIONS[where.choice(present.get(name, default), f"tls_server_config.{name}",
                                           TLS_VERSIONS)]
                 for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")))
    if low > high:
        raise where.error("tls_server_config.min_version", "is above max_version")
    if low < ssl.TLSVersion.TLSv1_2:
        notes.append("tls_server_config.min_version: TLS 1.0 and 1.1 are deprecated; OpenSSL's security "
                     "level may refuse them anyway")
    prefer = where.typed(present.get("prefer_server_cipher_suites", True),
                         "tls_server_config.prefer_server_cipher_suites", bool, "true or false")
    return TLSServerConfig(cert_file=where.file(present["cert_file"], "tls_server_config.cert_file"),
                           key_file=where.file(present["key_file"], "tls_server_config.key_file"),
                           client_auth_type=auth, client_ca_file=ca_file,
                           min_version=low, max_version=high, prefer_server_cipher_suites=prefer)


def _parse_headers(value: Any, where: _Where) -> dict[str, str]:
    headers = {}
    for name, content in where.mapping(value, "http_server_config.headers").items():
        key = f"http_server_config.headers.{name}"
        if name not in EXTRA_HEADERS:
            raise where.error(key, f"cannot be configured (allowed: {', '.join(EXTRA_HEADERS)})")
        if content is None or content == "":
            continue  # the toolkit's "unset if blank"
        content = where.typed(content, key, str, "a string")
        allowed = EXTRA_HEADERS[name]
        if allowed is not None and content not in allowed:
            raise where.error(key, f"expected one of {', '.join(allowed)}, got {content!r}")
        if any(char in content for char in "\r\n\0"):
            raise where.error(key, "must be a single line")
        headers[name] = content
    return headers


def _parse_users(value: Any, where: _Where) -> dict[str, bytes]:
    users = {}
    for name, hashed in where.mapping(value, "basic_auth_users").items():
        if not isinstance(name, str):
            raise where.error("basic_auth_users", f"user name {name!r} is not a string (quote it)")
        key = f"basic_auth_users.{name}"
        if ":" in name or not name:
            raise where.error(key, "a user name must be non-empty and cannot contain ':'")
        # Never echo the value: it is a secret, or a secret pasted in the wrong place.
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed):
            raise where.error(key, "expected a bcrypt hash ($2a$, $2b$ or $2y$, cost 04 to 31)")
        users[name] = hashed.encode("ascii")
    return users


def _build_context(tls: TLSServerConfig, where: _Where) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS10/TLS11 warn; the choice is the operator's, noted at load
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = tls.min_version, tls.max_version
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_refuse_password)
    except _EncryptedKey:
        raise where.error("tls_server_config.key_file", "the key is encrypted; give an unencrypted key "
                          "readable only by the exporter") from None
    except (ssl.SSLError, OSError) as exc:
        raise where.error("tls_server_config.cert_file/key_file",
                          f"cannot load the certificate and key: {_reason(exc)}") from None
    mode = CLIENT_AUTH_TYPES.get(tls.client_auth_type)
    if mode is None:
        raise where.error("tls_server_config.client_auth_type", f"{tls.client_auth_type!r} is not supported")
    context.verify_mode = mode
    if tls.client_ca_file is not None:
        key = "tls_server_config.client_ca_file"
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise where.error(key, f"cannot load the CA certificates: {_reason(exc)}") from None
        if context.cert_store_stats()["x509"] == 0:
            raise where.error(key, "contains no certificate")
    return context


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)


class _EncryptedKey(Exception):
    pass


def _refuse_password() -> bytes:
    """ssl calls this only for an encrypted key; without it OpenSSL would prompt on the terminal."""
    raise _EncryptedKey


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's problem and position, never the offending text: it may be a hash."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML: {getattr(exc, 'problem', None) or 'cannot parse'}{where}"


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, plus: a key given twice is an error, as in the toolkit."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
