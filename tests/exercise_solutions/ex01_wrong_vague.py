"""Wrong for exercise 1: catches the error but does not say which address or why."""

import sys

import chat_server

chat_server.explain_bind_error = lambda exc, host, port: "could not start the server"
sys.exit(chat_server.main())
