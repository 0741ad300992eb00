"""Gunicorn's settings for this application. Gunicorn reads ./gunicorn.conf.py by itself when
started from the repository root (``gunicorn "app:app"``); elsewhere pass ``-c`` with this
file's path. Command-line flags (``-w``, ``-b``, ``--timeout``) still apply on top.

- The access log leaves out query strings and the Referer: a customer search is a GET
  (``/admin/owner/customer/?search=Smith``) and a name in a log outlives the erasure of the
  person. The path, the status and the size are what operations need.
- Several workers without ``REDIS_URL`` would each count failed sign-ins on their own (two
  workers let through twice the limit): in production start-up refuses that, in
  development it warns.
"""

import sys

from crm.config import shared_limits_problem

# %(U)s is the path without its query string; no %(f)s (Referer: the page a request came
# from, with its query string).
access_log_format = '%(h)s %(l)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'


def on_starting(server):
    problem = shared_limits_problem(server.cfg.workers)
    if problem is None:
        return
    message, fatal = problem
    if fatal:
        server.log.error(message)
        sys.exit(1)
    server.log.warning(message)
