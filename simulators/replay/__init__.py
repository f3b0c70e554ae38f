"""Replay: serve a recorded session's server side back to a live client.

``script`` turns a ``transcripts`` Transcript into steps (recorded client unit → recorded reply),
using a protocol ``dialect`` (``imap``, ``pop3``, ``smtp``); ``session`` is the pure core that
matches a live client's units against them; ``pool`` pairs connections with recordings;
``server`` is the Twisted adapter (``ReplayServer``). ``quirkmail replay`` is
``scenarios.cli_replay``.
"""
