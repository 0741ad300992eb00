"""Business operations, one module per verb (DESIGN §2). Each is a plain function that takes
a session, keyword-only ids and the acting user, works inside the caller's transaction,
writes one audit event and raises ``ActionError`` to refuse."""


class ActionError(Exception):
    """An action refused; the message is a sentence a person can read."""
