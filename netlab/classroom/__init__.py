"""The class server: a netlab chat for a whole class, with a roster, a durable class log,
proofs of completion that can't be copied, and troubleshooting drills with seeded faults.

Pure parts (tokens, policy, events, drills, room, report) do no I/O and are tested without
a network; server, faults, eventlog, roster, student and commands are the thin shells.
"""
