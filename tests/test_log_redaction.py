"""Keys never reach a log line: Python logging and gunicorn's access log both hide them."""

import logging

from config.logredaction import RedactingGunicornLogger, RedactKeys, redact

SECRET = "sk-Zq3xY0uWvT9sRqPoNmLkJiHgFeDcBa8765"


def test_redact_keeps_only_the_hint():
    assert redact(f"/key/{SECRET}/regenerate?key={SECRET}") == "/key/sk-...8765/regenerate?key=sk-...8765"
    assert redact("sk-short") == "sk-short"  # too short to be a key: nothing to hide


def test_logging_filter_rewrites_the_message():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (f"/key/{SECRET}",), None
    )

    assert RedactKeys().filter(record)
    assert SECRET not in record.getMessage()
    assert "sk-...8765" in record.getMessage()


def test_gunicorn_access_atoms_hide_keys_in_path_and_query():
    class Cfg:
        access_log_format = '%(U)s %(q)s "%(r)s"'
        errorlog = "-"
        loglevel = "info"
        accesslog = None
        syslog = False
        logconfig = None
        logconfig_dict = {}
        logconfig_json = None
        capture_output = False
        disable_redirect_access_to_syslog = False
        user = 0
        group = 0
        umask = 0
        permit_unconventional_http_method = False

        def __getattr__(self, name):
            return None

    class Req:
        headers = []
        method = "POST"
        uri = f"/key/{SECRET}/regenerate?key={SECRET}"
        path = f"/key/{SECRET}/regenerate"
        query = f"key={SECRET}"
        version = (1, 1)

    class Resp:
        status = "404 Not Found"
        headers = []
        response_length = 0
        sent = 0

    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": Req.uri,
        "PATH_INFO": Req.path,
        "QUERY_STRING": Req.query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    import datetime

    logger = RedactingGunicornLogger.__new__(RedactingGunicornLogger)
    logger.cfg = Cfg()
    atoms = logger.atoms(Resp(), Req(), environ, datetime.timedelta(seconds=0.01))

    assert not any(isinstance(v, str) and SECRET in v for v in atoms.values())
    assert "sk-...8765" in atoms["U"]
