"""Wrong for exercise 7: clear messages, but no SO_REUSEADDR before bind()."""

import sys

import chat_server

chat_server.REUSE = False
sys.exit(chat_server.main())
