"""`python -m rtorrentd`."""

import sys

from rtorrentd.cli import main

if __name__ == "__main__":
    sys.exit(main())
