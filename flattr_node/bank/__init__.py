"""Bank rails (SEPA): structured references, the node's account and its EPC
QR code, people's payout accounts, pain.001 payout exports, CAMT.053 / MT940
statement import with its review list, refunds and statements for people.

The file formats are read and written by libraries (schwifty, python-stdnum,
sepaxml, pycamt, mt-940, segno); this package holds the rules.
"""


def init_app(app, cfg) -> None:
    from flask import request

    @app.before_request
    def statement_upload_limit():
        """A bank statement (operator pages) may be larger than any other request."""
        if request.path == "/operator/bank/import":
            request.max_content_length = cfg.bank_max_statement_mb * 1024 * 1024
