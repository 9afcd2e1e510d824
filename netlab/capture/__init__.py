"""`netlab capture`: watch the chat on the wire, explained packet by packet.

analysis.py is the pure core (segments in, explained events out); decode.py parses frames;
sniffer.py and pcapio.py are the I/O shells; render.py and svg.py draw; demo.py scripts a
whole chat; commands.py is the Click command.
"""
