"""`netlab bench`: a load generator for any line-based chat server.

tokens.py and stats.py are pure (no sockets); loadgen.py is the selectors-based event loop
that moves the bytes; scenarios.py runs the scenarios on top of it; report.py renders them;
commands.py is the Click command.
"""
