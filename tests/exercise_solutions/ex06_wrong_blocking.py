"""Wrong for exercise 6: a lock, framing, but a blocking sendall in the broadcast."""

import sys

import chat_server

chat_server.BLOCKING_BROADCAST = True
sys.exit(chat_server.main())
