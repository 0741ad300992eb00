"""``flask --app app crm ...``: the operator's commands, one module per subject. Each module
defines its commands and lists them in ``COMMANDS``; this package only gathers them into the
``crm`` group. The modules never import this package; the leads commands take ``--actor``
from the customers module, which owns it."""

from flask import Blueprint

from crm.cli import customers, imports, jobs, leads, ledger, loyalty, staff

bp = Blueprint("crm", __name__, cli_group="crm")

for module in (staff, ledger, loyalty, customers, leads, jobs, imports):
    for command in module.COMMANDS:
        bp.cli.add_command(command)
