"""The only code that changes rooms, memberships and messages.

Each ``do_*`` function validates what it must, writes rows inside a transaction, and schedules the
live events (and later federation sends) to go out after the commit. Views, consumers and tasks call
these; nothing else writes.
"""
