"""Wrong for exercise 10: tries every address, but lets a name error become a traceback."""

import sys

import ex10_client

ex10_client.SHOW_GAIERROR = True
sys.exit(ex10_client.main())
