"""Demo data for the CRM: deterministic, realistic in shape, fast enough for a million
customers. Not part of the application: ``app.py`` adds the ``flask crm seed`` command
(``demo.cli``, which loads the rest only when the command runs), and nothing in ``crm``
imports this package (the arrow is demo -> crm only).

``demo.seeding.seed_database(engine, customers=N, seed=S, batch=B, progress=callable)``
    -> rows per table (and ``.ledger_check``, what the ledger check compared)
``demo.customers.planted_duplicate_pairs(customers, seed)`` -> [(original id, duplicate id)]

How it is built:

- ``demo.vocabulary``: the word pools and weighted tables; Faker (en_GB, seeded with the seed)
  builds small pools once, and every row is then drawn from them with ``random.Random``
  (calling Faker per row would be far too slow for a million customers).
- Two independent random streams: *customers* (``demo.customers``: the customer rows,
  including the planted duplicates) and *related* (``demo.related``: everything hanging off a
  customer, and its stored ledger figures). ``planted_duplicate_pairs`` replays only the
  first. The same seed into an empty database gives the same rows, whatever the batch size.
- ``demo.loaders`` writes plain tuples through the DBAPI; ``demo.parallel`` generates them in
  a forked process meanwhile.
- ``demo.check``: the ledger figures come from a Python copy of ``crm.ledger``'s rules, so
  every seed ends with the ledger's own check and fails on any difference.
"""
