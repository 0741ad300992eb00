"""Demo data for the CRM: deterministic, realistic in shape, fast enough for a million
customers. Not part of the application: ``app.py`` adds the ``flask crm seed`` command."""
