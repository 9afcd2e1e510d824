"""Wrong for exercise 0: frames lines, but decodes each recv() chunk on its own."""

import ex00_client

ex00_client.DECODE_CHUNKS = True
ex00_client.main()
