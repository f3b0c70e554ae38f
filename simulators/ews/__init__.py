"""The EWS-like simulator: SOAP 1.1 over HTTP at ``/EWS/Exchange.asmx`` (see engine.py).

``engine.EwsService`` is the pure core (request → response, no sockets); ``server.EwsResource``
is the thin twisted.web adapter; ``quirks`` registers the EWS provider behaviours.
"""

from simulators.ews.engine import EWS_PATH, EwsService, HttpRequest, HttpResponse

__all__ = ["EWS_PATH", "EwsService", "HttpRequest", "HttpResponse"]
