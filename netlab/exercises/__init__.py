"""Exercises: one per lesson, checked by `netlab check NAME -- COMMAND ARGS...`.

The registry (registry.py) names each exercise and its check; a check receives a
CheckContext (how to run the student's program, the answers file, the limits) and returns
criteria. Checks observe real sockets on loopback, so the same exercise grades correctly on
every system; answers that depend on the machine are computed live.
"""
