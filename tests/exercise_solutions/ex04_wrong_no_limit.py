"""Wrong for exercise 4: frames and decodes well, but has no line limit."""

import sys

import chat_server

chat_server.MAX_LINE = 1 << 30
sys.exit(chat_server.main())
