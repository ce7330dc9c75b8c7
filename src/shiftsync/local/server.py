"""moto's threaded server on 127.0.0.1, with a hook to wrap its WSGI app and honest start errors."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from shiftsync.errors import StandInError

WsgiApp = Callable[..., Any]


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            reason = "is taken" if error.errno == errno.EADDRINUSE else f"cannot be used ({error})"
            raise StandInError(
                f"port {port} on 127.0.0.1 {reason}",
                fix="pick another with --port, or stop what listens there",
            ) from error


class StandInServer(ThreadedMotoServer):
    def __init__(self, port: int, wrap: Callable[[WsgiApp], WsgiApp] | None = None) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._wrap = wrap
        self._start_error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            app: WsgiApp = DomainDispatcherApplication(create_backend_app)
            if self._wrap is not None:
                app = self._wrap(app)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
        except BaseException as error:  # reported by start()
            self._start_error = error
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        super().start()
        if self._start_error is not None:
            raise StandInError(
                f"the stand-in could not listen on 127.0.0.1:{self._port}: {self._start_error}",
                fix="pick another port with --port",
            )

    @property
    def port(self) -> int:
        return int(self.get_host_and_port()[1])
