"""Runs moto's server on loopback for as long as whoever started it is alive.

Prints `READY http://HOST:PORT` once it is listening (pass port 0 for a free one), then waits
for its standard input to close: the parent holds the pipe, so when the parent exits for any
reason, even a crash, the emulator stops too and never holds a port.

Requests are served one at a time. moto's DynamoDB transactions are not isolated from each
other: a cancelled transaction restores a copy of the table taken when it began, wiping out
whatever a concurrent request wrote meanwhile. Real DynamoDB serialises conflicting
transactions, so serialising requests here is what keeps the emulator faithful; connections
are still accepted concurrently.
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ, start_response):
        with one_at_a_time:
            return list(app(environ, start_response))

    server = make_server(host, port, serialised, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY http://{host}:{server.server_port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
