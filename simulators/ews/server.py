"""twisted.web adapter for the EWS core: one Resource at /EWS/Exchange.asmx, nothing else."""

from __future__ import annotations

from twisted.internet import defer
from twisted.protocols import policies
from twisted.web import resource, server

from simulators.ews.engine import EwsService, HttpRequest
from simulators.profiles import Profile
from simulators.store import Store


class EwsResource(resource.Resource):
    isLeaf = True

    def __init__(self, service: EwsService):
        super().__init__()
        self.service = service

    def render(self, request) -> bytes:
        # First value of each header; names in lower case as HttpRequest wants them.
        headers = {name.decode("latin-1").lower(): values[0].decode("latin-1")
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        reply = self.service.handle(HttpRequest(
            request.method.decode("ascii"), request.path.decode("utf-8", "replace"), headers, request.content.read()))
        request.setResponseCode(reply.status)
        for name, value in reply.headers:
            request.responseHeaders.addRawHeader(name, value)
        return reply.body


class EwsSite(policies.WrappingFactory):
    """A twisted.web Site for one EWS service, wrapped so ``close_connections`` can end the
    connections it has open (keep-alive clients such as exchangelib hold them)."""

    def __init__(self, store: Store, profile: Profile):
        self.service = EwsService(store, profile)
        site = server.Site(EwsResource(self.service))
        site.displayTracebacks = False
        site.log = lambda request: None  # no access log on stdout
        super().__init__(site)

    def close_connections(self) -> defer.Deferred:
        for proto in list(self.protocols):
            proto.transport.abortConnection()
        return defer.succeed(None)
