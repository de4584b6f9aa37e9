"""docqa web app: the top-level entry point; the app itself is `qa.app.web`.

    python app.py [--host 127.0.0.1] [--port 7860] [--corpus DIR] [--index DIR] [--auth USER:PASSWORD]

Same as `qa serve`, with the same flags.
"""

import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
