"""The web config file (exporter-toolkit format): what loads, what is refused and how users check."""
from __future__ import annotations

import os
import ssl
from pathlib import Path

import bcrypt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from hftel.errors import HftelError
from hftel_exporter.webconfig import WebConfig, WebConfigError, load_web_config

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    """A bcrypt hash of PASSWORD at the lowest cost, so the tests stay fast."""
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture
def tls_dir(tmp_path: Path, ca: trustme.CA) -> Path:
    """server.pem, server.key and ca.pem in a temporary directory, where the config goes too."""
    cert = ca.issue_cert("127.0.0.1")
    (tmp_path / "server.pem").write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return tmp_path


def write_config(directory: Path, text: str) -> Path:
    """Writes a web config file and returns its path."""
    path = directory / "web-config.yml"
    path.write_text(text)
    return path


TLS = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"


def test_no_file_means_no_tls_and_no_auth() -> None:
    """load_web_config(None) serves plain HTTP to everyone."""
    web = load_web_config(None)
    assert (None, False, {}) == (web.ssl_context(), web.auth_required, dict(web.headers))


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    """An empty file is valid and enables nothing, as in the toolkit."""
    web = load_web_config(write_config(tmp_path, ""))
    assert (None, False) == (web.tls, web.auth_required)


def test_valid_config_loads(tls_dir: Path, password_hash: str) -> None:
    """TLS with client certificates, headers and a user all load from one file."""
    web = load_web_config(write_config(tls_dir, TLS + (
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
        "  min_version: TLS13\n"
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"
        f"basic_auth_users:\n  prometheus: '{password_hash}'\n")))
    context = web.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert (ssl.CERT_REQUIRED, ssl.TLSVersion.TLSv1_3) == (context.verify_mode,
                                                           context.minimum_version)
    assert {"Strict-Transport-Security": "max-age=31536000"} == dict(web.headers)
    assert ("prometheus",) == web.users


def test_tls_defaults_to_tls12_minimum_without_client_certs(tls_dir: Path) -> None:
    """Like the toolkit: TLS 1.2 at least, no client certificate asked for."""
    context = load_web_config(write_config(tls_dir, TLS)).ssl_context()
    assert context is not None
    assert (ssl.TLSVersion.TLSv1_2, ssl.CERT_NONE) == (context.minimum_version, context.verify_mode)


def test_relative_paths_resolve_against_the_config_directory(
        tls_dir: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """cert_file: server.pem means next to the config file, whatever the working directory."""
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    web = load_web_config(write_config(tls_dir, TLS))
    assert web.tls is not None
    assert tls_dir / "server.pem" == web.tls.cert_file


def test_http2_is_accepted_and_noted(tmp_path: Path) -> None:
    """http2 cannot be served by the standard library: accepted, ignored, and said so."""
    web = load_web_config(write_config(tmp_path, "http_server_config:\n  http2: true\n"))
    assert any("http2" in note for note in web.notes)


def test_web_config_error_is_an_hftel_error() -> None:
    """Callers can catch every hftel error at once."""
    assert issubclass(WebConfigError, HftelError)


BAD_CONFIGS = {
    "unknown top-level key": ("tls_config:\n  cert_file: server.pem\n", "tls_config: unknown key"),
    "unknown tls key": (TLS + "  certfile: x\n", "tls_server_config.certfile: unknown key"),
    "section of the wrong type": ("basic_auth_users: [alice]\n", "basic_auth_users: expected a mapping"),
    "client_auth_type not in the list": (
        TLS + "  client_auth_type: Always\n",
        "tls_server_config.client_auth_type: expected one of NoClientCert, RequestClientCert, "
        "RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
    "RequireAnyClientCert cannot be honoured": (
        TLS + "  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.pem\n",
        "tls_server_config.client_auth_type: RequireAnyClientCert is not supported"),
    "verified client certs without a CA": (
        TLS + "  client_auth_type: RequireAndVerifyClientCert\n",
        "tls_server_config.client_ca_file: RequireAndVerifyClientCert needs client_ca_file"),
    "client CA without client auth": (
        TLS + "  client_ca_file: ca.pem\n", "tls_server_config.client_auth_type: client_ca_file is set"),
    "certificate without key": ("tls_server_config:\n  cert_file: server.pem\n",
                                "tls_server_config.key_file: missing"),
    "key without certificate": ("tls_server_config:\n  key_file: server.key\n",
                                "tls_server_config.cert_file: missing"),
    "missing file": ("tls_server_config:\n  cert_file: nope.pem\n  key_file: server.key\n",
                     "tls_server_config.cert_file: cannot read"),
    "directory as a file": ("tls_server_config:\n  cert_file: .\n  key_file: server.key\n",
                            "tls_server_config.cert_file: cannot read"),
    "certificate and key that do not match": (
        "tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n",
        "tls_server_config.cert_file/key_file: cannot load"),
    "CA file with no certificate": (TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                                    "  client_ca_file: server.key\n",
                                    "tls_server_config.client_ca_file: cannot load"),
    "unknown TLS version": (TLS + "  min_version: TLS14\n",
                            "tls_server_config.min_version: expected one of TLS10"),
    "minimum above maximum": (TLS + "  min_version: TLS13\n  max_version: TLS12\n",
                              "tls_server_config.min_version: is above max_version"),
    "cipher suites": (TLS + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                      "tls_server_config.cipher_suites: not supported"),
    "curve preferences": (TLS + "  curve_preferences: [X25519]\n",
                          "tls_server_config.curve_preferences: not supported"),
    "inline client CA": (TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca: PEM\n",
                         "tls_server_config.client_ca: inline CA certificates are not supported"),
    "rate limit": ("rate_limit:\n  interval: 1s\n  burst: 5\n", "rate_limit: not supported"),
    "prefer_server_cipher_suites not a boolean": (
        TLS + "  prefer_server_cipher_suites: sometimes\n",
        "tls_server_config.prefer_server_cipher_suites: expected true or false"),
    "header the toolkit does not allow": ("http_server_config:\n  headers:\n    X-Powered-By: me\n",
                                          "http_server_config.headers.X-Powered-By: cannot be "
                                          "configured"),
    "header value outside its list": ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                                      "http_server_config.headers.X-Frame-Options: expected one "
                                      "of deny, sameorigin"),
    "hash that is not bcrypt": ("basic_auth_users:\n  alice: plaintext\n",
                                "basic_auth_users.alice: expected a bcrypt hash"),
    "user name that YAML reads as a boolean": ("basic_auth_users:\n  yes: x\n",
                                               "basic_auth_users: user name True is not a string"),
    "duplicate key": ("basic_auth_users:\n  alice: a\n  alice: b\n",
                      "not valid YAML: duplicate key 'alice' at line 3"),
    "invalid YAML": ("basic_auth_users: [\n", "not valid YAML"),
    "document that is not a mapping": ("- a\n", "(top level): expected a mapping"),
}


@pytest.mark.parametrize("text, expected", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_raises_naming_the_file_and_key(tls_dir: Path, ca: trustme.CA, text: str,
                                                   expected: str) -> None:
    """Each kind of bad input is a WebConfigError that names the file and the offending key."""
    ca.issue_cert("127.0.0.2").private_key_pem.write_to_path(str(tls_dir / "other.key"))
    path = write_config(tls_dir, text)
    with pytest.raises(WebConfigError) as error:
        load_web_config(path)
    assert str(error.value).startswith(f"web config {path}: ")
    assert expected in str(error.value)


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    """A config path that does not exist is a WebConfigError naming it."""
    with pytest.raises(WebConfigError, match="missing.yml: cannot read the file"):
        load_web_config(tmp_path / "missing.yml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file_is_refused(tls_dir: Path) -> None:
    """A key file the exporter may not read is named in the error."""
    (tls_dir / "server.key").chmod(0)
    with pytest.raises(WebConfigError, match="tls_server_config.key_file: cannot read"):
        load_web_config(write_config(tls_dir, TLS))


def test_encrypted_key_is_refused_without_prompting(tls_dir: Path) -> None:
    """An encrypted key is an error, not a password prompt on the terminal."""
    key = serialization.load_pem_private_key((tls_dir / "server.key").read_bytes(), None)
    (tls_dir / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    with pytest.raises(WebConfigError, match="tls_server_config.key_file: the key is encrypted"):
        load_web_config(write_config(tls_dir, TLS))


def test_error_for_a_bad_hash_does_not_echo_it(tmp_path: Path) -> None:
    """A secret pasted where the hash goes never reaches the message."""
    with pytest.raises(WebConfigError) as error:
        load_web_config(write_config(tmp_path, "basic_auth_users:\n  alice: hunter2-secret\n"))
    assert "hunter2-secret" not in str(error.value)


def test_yaml_error_does_not_echo_the_line(tmp_path: Path) -> None:
    """A syntax error near a hash reports the position, not the text."""
    with pytest.raises(WebConfigError) as error:
        load_web_config(write_config(tmp_path, "basic_auth_users:\n  alice: \"hunter2-secret\n"))
    assert "hunter2-secret" not in str(error.value)


@pytest.fixture
def users_config(tmp_path: Path, password_hash: str) -> WebConfig:
    """A config with one user, prometheus, whose password is PASSWORD."""
    return load_web_config(write_config(tmp_path,
                                        f"basic_auth_users:\n  prometheus: '{password_hash}'\n"))


def test_correct_password_is_accepted(users_config: WebConfig) -> None:
    """The right user and password pass."""
    assert users_config.authenticate("prometheus", PASSWORD)


def test_wrong_password_is_refused(users_config: WebConfig) -> None:
    """A wrong password fails."""
    assert not users_config.authenticate("prometheus", "guess")


def test_unknown_user_is_refused(users_config: WebConfig) -> None:
    """A user not in the file fails, even with a configured user's password."""
    assert not users_config.authenticate("root", PASSWORD)


def test_password_longer_than_bcrypt_allows_is_refused(users_config: WebConfig) -> None:
    """More than 72 bytes cannot match any bcrypt hash: refused, not an exception."""
    assert not users_config.authenticate("prometheus", PASSWORD * 5)


def test_2y_hashes_from_htpasswd_work(tmp_path: Path, password_hash: str) -> None:
    """htpasswd writes $2y$ hashes; they check like $2b$ ones."""
    hashed = password_hash.replace("$2b$", "$2y$", 1)
    web = load_web_config(write_config(tmp_path, f"basic_auth_users:\n  p: '{hashed}'\n"))
    assert web.authenticate("p", PASSWORD)


def test_cached_success_does_not_call_bcrypt_again(users_config: WebConfig,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrape every second pays bcrypt once per user and password."""
    calls = []
    checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *args: calls.append(1) or checkpw(*args))
    results = [users_config.authenticate("prometheus", PASSWORD) for _ in range(3)]
    assert ([True] * 3, 1) == (results, len(calls))


def test_wrong_password_after_a_cached_one_is_still_refused(users_config: WebConfig) -> None:
    """The cache remembers one password; another is checked with bcrypt and fails."""
    users_config.authenticate("prometheus", PASSWORD)
    assert not users_config.authenticate("prometheus", PASSWORD + "x")


def test_repr_and_str_never_show_a_password_or_hash(users_config: WebConfig,
                                                    password_hash: str) -> None:
    """The config can be logged: the user names show, their hashes and passwords do not."""
    users_config.authenticate("prometheus", PASSWORD)
    text = repr(users_config) + str(users_config)
    assert "prometheus" in text
    assert password_hash not in text and PASSWORD not in text and "$2" not in text


def test_example_config_loads_once_its_placeholders_are_filled(tls_dir: Path,
                                                               password_hash: str) -> None:
    """exporter/web-config.example.yml uses only keys hftel honours."""
    example = Path(__file__).parent.parent / "exporter" / "web-config.example.yml"
    text = (example.read_text()
            .replace("/etc/hftel/tls/exporter.crt", "server.pem")
            .replace("/etc/hftel/tls/exporter.key", "server.key")
            .replace("$2b$10$REPLACE_WITH_A_REAL_BCRYPT_HASH", password_hash))
    web = load_web_config(write_config(tls_dir, text))
    assert (True, ("prometheus",)) == (web.tls is not None, web.users)


def test_example_placeholder_hash_is_refused(tmp_path: Path) -> None:
    """The example's placeholder is not a hash, so an unedited copy cannot start the exporter."""
    with pytest.raises(WebConfigError, match="basic_auth_users.prometheus: expected a bcrypt hash"):
        load_web_config(write_config(
            tmp_path, "basic_auth_users:\n  prometheus: '$2b$10$REPLACE_WITH_A_REAL_BCRYPT_HASH'\n"))
