"""Service functions: plain values in, one database transaction, domain errors out.

Views, CLI commands and scheduled jobs call these and never compute money.
"""
