"""Indexed paging (IndexedPageItemView / IndexedPageFolderView) as Exchange computes it."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from simulators.ews.soap import SoapFault


@dataclass(frozen=True)
class Page:
    start: int  # slice of the full view that is returned
    stop: int
    next_offset: int  # IndexedPagingOffset
    total: int  # TotalItemsInView
    includes_last: bool  # IncludesLastItemInRange

    def attrs(self) -> dict[str, str]:
        return {"IndexedPagingOffset": str(self.next_offset), "TotalItemsInView": str(self.total),
                "IncludesLastItemInRange": "true" if self.includes_last else "false"}


def page(view: etree._Element | None, total: int, max_page: int | None) -> Page:
    """The page a view element asks for; without a view, everything (capped at ``max_page``)."""
    offset, wanted, base = 0, None, "Beginning"
    if view is not None:
        try:
            offset = int(view.get("Offset", "0"))
            wanted = int(view.get("MaxEntriesReturned")) if view.get("MaxEntriesReturned") else None
        except ValueError:
            text = "The request failed schema validation: Offset/MaxEntriesReturned must be integers."
            raise SoapFault("ErrorSchemaValidation", text) from None
        base = view.get("BasePoint", "Beginning")
        if offset < 0 or (wanted is not None and wanted < 1):
            raise SoapFault("ErrorSchemaValidation",
                            "The request failed schema validation: negative Offset or MaxEntriesReturned.")
    if max_page is not None:
        wanted = max_page if wanted is None else min(wanted, max_page)
    wanted = total if wanted is None else wanted
    if base == "End":
        stop = max(total - offset, 0)
        start = max(stop - wanted, 0)
        return Page(start, stop, start, total, start == 0)
    start = min(offset, total)
    stop = min(start + wanted, total)
    return Page(start, stop, stop, total, stop >= total)
