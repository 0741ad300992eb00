"""Entry point: ``flask --app app ...`` and ``gunicorn "app:app"``.

The application is ``crm``; the demo data loader (``demo``) is not part of it, and is added
here as ``flask --app app crm seed``."""

from crm import create_app
from demo.cli import register as register_demo_commands

app = create_app()
register_demo_commands(app)
