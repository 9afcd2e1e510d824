"""Wrong for exercise 3: read_line is buffered, but recv_exactly trusts one recv()."""

import ex03_server

ex03_server.SINGLE_RECV = True
ex03_server.main()
