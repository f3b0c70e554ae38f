"""Collaboration data (contacts, events, tasks, notes) and the EWS migration flow.

    convert.py   exchangelib items → vCard 3.0 / iCalendar text (pure: objects in, text out)
    throttle.py  is an EWS failure temporary, and how long to wait (pure: exception in, delay out)
    state.py     checkpoint of EWS items the destination confirmed (keyed by ItemId, not UID)
    flow.py      migrate_ews(): folders by class, mail → IMAP sink, the rest → DAV/EWS sink
"""
