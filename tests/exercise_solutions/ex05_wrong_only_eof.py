"""Wrong for exercise 5: handles b'' and /quit, but not ConnectionResetError: the reset
client's thread dies with a traceback and nobody is told that it left."""

import sys

import chat_server

chat_server.LEAVE_ERRORS = ()
chat_server.OTHER_ERRORS = ()
sys.exit(chat_server.main())
