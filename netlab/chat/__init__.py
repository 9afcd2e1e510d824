"""The chat: a pure protocol core (protocol.py, room.py) and thin socket shells."""
