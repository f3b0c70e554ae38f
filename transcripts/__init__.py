"""Protocol transcripts: record a session's bytes, replay a server side, anonymise, import raw logs.

``transcripts.format`` is the file format (JSON Lines; see its docstring) that every other part
reads and writes. The package depends on nothing else in quirkmail, so the engine (recording)
and the simulators (replay) can both use it.
"""
