"""The EWS core without sockets: request bytes in, response status/headers/XML out."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from simulators.ews import EwsService, HttpRequest, ids
from simulators.ews.soap import ENS, MNS, SOAP, TNS
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import ItemKind, PimItem, Store

NS = {"s": SOAP, "m": MNS, "t": TNS, "e": ENS}
BASIC = "Basic " + base64.b64encode(b"alice:secret").decode()


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}" xmlns:m="{MNS}" xmlns:t="{TNS}">'
        f'<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


@pytest.fixture
def store() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for i in range(25):
        account.append(("INBOX",), f"Subject: m{i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody\r\n".encode(),
                       flags={"\\Seen"} if i < 5 else set())
    return store


@pytest.fixture
def service(store) -> EwsService:
    return EwsService(store, load_profile("generic"))


def post(service, body: bytes, auth: str | None = BASIC, path: str = "/EWS/Exchange.asmx", **headers):
    hdrs = {k.lower().replace("_", "-"): v for k, v in headers.items()}
    if auth:
        hdrs["authorization"] = auth
    return service.handle(HttpRequest("POST", path, hdrs, body))


def xml(response) -> etree._Element:
    assert dict(response.headers)["Content-Type"] == "text/xml; charset=utf-8"
    return etree.fromstring(response.body)


def op(service, body: str) -> etree._Element:
    response = post(service, envelope(body))
    assert response.status == 200, response.body
    return xml(response)


INBOX = '<t:DistinguishedFolderId Id="inbox"/>'


def find_items(service, view: str, shape: str = "IdOnly") -> etree._Element:
    return op(service, f'<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>{shape}</t:BaseShape></m:ItemShape>'
                       f'{view}<m:ParentFolderIds>{INBOX}</m:ParentFolderIds></m:FindItem>')


# Authentication and transport -----------------------------------------------------------------


def test_missing_or_wrong_credentials_get_401_with_challenges(service):
    for auth in (None, "Basic " + base64.b64encode(b"alice:wrong").decode(), "Bearer nope", "Basic !!"):
        response = post(service, envelope(""), auth=auth)
        assert response.status == 401 and response.body == b""
        assert [v for k, v in response.headers if k == "WWW-Authenticate"] == ['Basic realm="quirkmail"', "Bearer"]


def test_bearer_token_is_the_password(service):
    root = xml(post(service, envelope(f"<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
                                      f"<m:FolderIds>{INBOX}</m:FolderIds></m:GetFolder>"), auth="Bearer secret"))
    assert root.findtext(".//t:DisplayName", namespaces=NS) == "Inbox"


def test_other_paths_and_methods(service):
    assert post(service, envelope(""), path="/ews/other.asmx").status == 404
    assert service.handle(HttpRequest("GET", "/EWS/Exchange.asmx", {"authorization": BASIC})).status == 405


# SOAP faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<not xml", "ErrorSchemaValidation"),
        (b"<a>plain</a>", "ErrorSchemaValidation"),
        (envelope(""), "ErrorSchemaValidation"),
        (envelope("<m:Frobnicate/>"), "ErrorInvalidRequest"),
    ],
)
def test_bad_requests_get_a_soap_fault_and_the_service_keeps_serving(service, body, code):
    response = post(service, body)
    assert response.status == 500
    root = xml(response)
    fault = root.find("s:Body/s:Fault", NS)
    assert fault.findtext("faultcode") == f"a:{code}"
    assert fault.find("faultcode").nsmap["a"] == TNS
    assert fault.findtext("detail/e:ResponseCode", namespaces=NS) == code
    assert fault.findtext("detail/e:Message", namespaces=NS) == fault.findtext("faultstring")
    if body == b"<not xml":
        assert fault.findtext("detail/t:MessageXml/t:LineNumber", namespaces=NS) == "1"
    assert find_items(service, "").find(".//m:RootFolder", NS).get("TotalItemsInView") == "25"


# Folders ---------------------------------------------------------------------------------------------


def test_get_folder_counts_and_per_folder_errors(service):
    root = op(service, '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>'
                       f'{INBOX}<t:DistinguishedFolderId Id="voicemail"/><t:FolderId Id="@@@"/>'
                       '</m:FolderIds></m:GetFolder>')
    ok, missing, malformed = root.findall(".//m:GetFolderResponseMessage", NS)
    assert ok.get("ResponseClass") == "Success"
    folder = ok.find("m:Folders/t:Folder", NS)
    assert [folder.findtext(f"t:{k}", namespaces=NS) for k in ("FolderClass", "TotalCount", "UnreadCount")] == [
        "IPF.Note", "25", "20"]
    assert folder.find("t:FolderId", NS).get("Id") == ids.folder_id("alice", ("INBOX",))
    assert missing.get("ResponseClass") == "Error"
    assert missing.findtext("m:ResponseCode", namespaces=NS) == "ErrorFolderNotFound"
    assert missing.findtext("m:MessageText", namespaces=NS) == "The specified folder could not be found in the store."
    assert malformed.findtext("m:ResponseCode", namespaces=NS) == "ErrorInvalidIdMalformed"


def test_distinguished_folders_exist_with_their_classes(service, store):
    root = op(service, '<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
                       '<m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>')
    rf = root.find(".//m:RootFolder", NS)
    shown = {f.findtext("t:DisplayName", namespaces=NS): (etree.QName(f).localname, f.findtext("t:FolderClass", namespaces=NS))
             for f in rf.find("t:Folders", NS)}
    assert shown["Calendar"] == ("CalendarFolder", "IPF.Appointment")
    assert shown["Contacts"] == ("ContactsFolder", "IPF.Contact")
    assert shown["Tasks"] == ("TasksFolder", "IPF.Task")
    assert shown["Notes"] == ("Folder", "IPF.StickyNote")
    assert shown["Trash"] == ("Folder", "IPF.Note")  # the generic profile names deleteditems "Trash"
    assert rf.get("TotalItemsInView") == str(len(shown)) and rf.get("IncludesLastItemInRange") == "true"
    assert store.account("alice").folder(("Calendar",)).folder_class == "IPF.Appointment"


def test_create_folder_and_sync_hierarchy(service):
    sync = '<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>{}</m:SyncFolderHierarchy>'
    first = op(service, sync.format(""))
    state = first.findtext(".//m:SyncState", namespaces=NS)
    assert len(first.findall(".//t:Create", NS)) == 9  # Inbox and the 8 other distinguished folders (made on first use)
    assert op(service, sync.format(f"<m:SyncState>{state}</m:SyncState>")).find(".//m:Changes", NS).getchildren() == []
    create = ('<m:CreateFolder><m:ParentFolderId>' + INBOX + '</m:ParentFolderId><m:Folders><t:Folder>'
              '<t:DisplayName>Receipts</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>')
    assert op(service, create).findtext(".//m:ResponseCode", namespaces=NS) == "NoError"
    again = op(service, create).find(".//m:CreateFolderResponseMessage", NS)
    assert again.findtext("m:ResponseCode", namespaces=NS) == "ErrorFolderExists"
    changes = op(service, sync.format(f"<m:SyncState>{state}</m:SyncState>")).find(".//m:Changes", NS)
    assert [etree.QName(c).localname for c in changes] == ["Create"]
    assert changes.find("t:Create/t:Folder/t:DisplayName", NS).text == "Receipts"


# Items -----------------------------------------------------------------------------------------------


def test_indexed_paging_values(service):
    def page(offset, n, base="Beginning"):
        rf = find_items(service, f'<m:IndexedPageItemView MaxEntriesReturned="{n}" Offset="{offset}" BasePoint="{base}"/>'
                        ).find(".//m:RootFolder", NS)
        return (rf.get("IndexedPagingOffset"), rf.get("TotalItemsInView"), rf.get("IncludesLastItemInRange"),
                len(rf.find("t:Items", NS)))

    assert page(0, 10) == ("10", "25", "false", 10)
    assert page(20, 10) == ("25", "25", "true", 5)
    assert page(30, 10) == ("25", "25", "true", 0)
    assert page(0, 10, "End") == ("15", "25", "false", 10)


def test_profile_caps_the_page_size(store):
    capped = EwsService(store, load_profile("exchange").model_copy(
        update={"ews": load_profile("exchange").ews.model_copy(update={"max_page_size": 7})}))
    rf = find_items(capped, '<m:IndexedPageItemView MaxEntriesReturned="100" Offset="0" BasePoint="Beginning"/>'
                    ).find(".//m:RootFolder", NS)
    assert (rf.get("IndexedPagingOffset"), len(rf.find("t:Items", NS))) == ("7", 7)
    assert load_profile("exchange").ews.max_page_size == 1000 and load_profile("generic").ews.max_page_size is None


def test_item_ids_are_stable_and_shapes_trim_fields(service):
    a = find_items(service, "").findall(".//t:Message/t:ItemId", NS)
    b = find_items(service, "").findall(".//t:Message/t:ItemId", NS)
    assert [i.get("Id") for i in a] == [i.get("Id") for i in b]
    assert [etree.QName(c).localname for c in find_items(service, "").find(".//t:Message", NS)] == ["ItemId"]
    first = a[0].get("Id")
    got = op(service, '<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>'
                      '<t:FieldURI FieldURI="item:Subject"/></t:AdditionalProperties></m:ItemShape>'
                      f'<m:ItemIds><t:ItemId Id="{first}"/></m:ItemIds></m:GetItem>')
    msg = got.find(".//m:Items/t:Message", NS)
    assert [etree.QName(c).localname for c in msg] == ["ItemId", "Subject"] and msg.findtext("t:Subject", namespaces=NS) == "m0"
    mime = op(service, '<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true'
                       f'</t:IncludeMimeContent></m:ItemShape><m:ItemIds><t:ItemId Id="{first}"/></m:ItemIds></m:GetItem>')
    assert base64.b64decode(mime.findtext(".//t:MimeContent", namespaces=NS)) == b"Subject: m0\r\nMessage-ID: <0@x>\r\n\r\nbody\r\n"
    gone = op(service, '<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>'
                       f'<t:ItemId Id="{ids.item_id("alice", ("INBOX",), "m:1:999")}"/></m:ItemIds></m:GetItem>')
    assert gone.findtext(".//m:ResponseCode", namespaces=NS) == "ErrorItemNotFound"


def test_sync_folder_items_in_batches_then_changes(service, store):
    def sync(state: str = "", n: int = 10):
        root = op(service, '<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
                           f'<m:SyncFolderId>{INBOX}</m:SyncFolderId><m:SyncState>{state}</m:SyncState>'
                           f'<m:MaxChangesReturned>{n}</m:MaxChangesReturned></m:SyncFolderItems>')
        msg = root.find(".//m:SyncFolderItemsResponseMessage", NS)
        kinds = [etree.QName(c).localname for c in msg.find("m:Changes", NS)]
        return msg.findtext("m:SyncState", namespaces=NS), msg.findtext("m:IncludesLastItemInRange", namespaces=NS), kinds

    state, last, kinds = sync()
    assert (last, kinds) == ("false", ["Create"] * 10)
    state, _, _ = sync(state)
    state, last, kinds = sync(state)
    assert (last, kinds) == ("true", ["Create"] * 5)
    account = store.account("alice")
    account.append(("INBOX",), b"Subject: new\r\n\r\n")
    inbox = account.folder(("INBOX",))
    inbox.messages[0].flags.add("\\Flagged")
    inbox.messages[1].flags.add("\\Deleted")
    account.expunge(("INBOX",))
    inbox.messages[10].flags.add("\\Seen")  # m11 (unread until now): only its read state changes
    _, last, kinds = sync(state)
    assert (last, sorted(kinds)) == ("true", ["Create", "Delete", "ReadFlagChange", "Update"])
    bad = post(service, envelope('<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
                                 f'<m:SyncFolderId>{INBOX}</m:SyncFolderId><m:SyncState>garbage</m:SyncState>'
                                 '<m:MaxChangesReturned>5</m:MaxChangesReturned></m:SyncFolderItems>'))
    assert bad.status == 500 and b"ErrorInvalidSyncStateData" in bad.body


def test_corrupt_pim_payload_is_a_per_item_error(service, store):
    account = store.account("alice")
    account.create_folder(("Contacts",), folder_class="IPF.Contact")
    account.add_item(("Contacts",), PimItem(ItemKind.CONTACT, "broken", "not a vcard"))
    item_id = ids.item_id("alice", ("Contacts",), "p:broken")
    root = op(service, '<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape>'
                       f'<m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:GetItem>')
    msg = root.find(".//m:GetItemResponseMessage", NS)
    assert msg.findtext("m:ResponseCode", namespaces=NS) == "ErrorCorruptData"
    assert "contact broken" in msg.findtext("m:MessageText", namespaces=NS)


def test_server_busy_fault_shape(store):
    profile = load_profile("generic").with_quirks([QuirkSpec.parse("ews-server-busy:after=1,times=1,backoff_ms=297749")])
    service = EwsService(store, profile)
    assert find_items(service, "") is not None
    response = post(service, envelope("<m:GetFolder/>"))
    assert response.status == 500
    detail = xml(response).find("s:Body/s:Fault/detail", NS)
    assert detail.findtext("e:ResponseCode", namespaces=NS) == "ErrorServerBusy"
    value = detail.find("t:MessageXml/t:Value", NS)
    assert (value.get("Name"), value.text) == ("BackOffMilliseconds", "297749")
    assert find_items(service, "") is not None  # only the second request was refused


def test_create_message_without_mime_composes_one(service, store):
    root = op(service, '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>' + INBOX +
              '</m:SavedItemFolderId><m:Items><t:Message><t:Subject>Hi there</t:Subject><t:Body BodyType="Text">'
              'Hello</t:Body><t:ToRecipients><t:Mailbox><t:Name>Bob</t:Name><t:EmailAddress>bob@x.test</t:EmailAddress>'
              '</t:Mailbox></t:ToRecipients><t:IsRead>1</t:IsRead></t:Message></m:Items></m:CreateItem>')
    assert root.findtext(".//m:ResponseCode", namespaces=NS) == "NoError"
    item = store.account("alice").folder(("INBOX",)).messages[-1]
    assert b"Subject: Hi there\r\n" in item.raw and b"To: Bob <bob@x.test>\r\n" in item.raw
    assert item.raw.endswith(b"\r\n\r\nHello\r\n")
    assert item.flags == {"\\Seen", "\\Draft"}  # no PR_MESSAGE_FLAGS: Exchange keeps it an unsent draft
    sending = op(service, '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:Subject>x</t:Subject>'
                 '</t:Message></m:Items></m:CreateItem>').find(".//m:CreateItemResponseMessage", NS)
    assert sending.findtext("m:ResponseCode", namespaces=NS) == "ErrorInvalidRequest"


def test_a_simulator_bug_is_an_internal_server_error_fault_not_a_dead_endpoint(service, monkeypatch):
    from simulators.ews import operations

    def broken(ctx, el):
        raise KeyError("boom")

    monkeypatch.setitem(operations.OPERATIONS, "GetFolder", broken)
    response = post(service, envelope("<m:GetFolder/>"))
    assert response.status == 500
    fault = xml(response).find("s:Body/s:Fault", NS)
    assert fault.findtext("faultcode") == "a:ErrorInternalServerError" and "KeyError" in fault.findtext("faultstring")
    assert find_items(service, "").find(".//m:RootFolder", NS).get("TotalItemsInView") == "25"


@pytest.mark.parametrize(
    "view",
    [
        '<m:SortOrder><t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="message:From"/></t:FieldOrder></m:SortOrder>',
        '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="message:From"/><t:FieldURIOrConstant>'
        '<t:Constant Value="x"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>',
    ],
    ids=["sort", "restriction"],
)
def test_unsupported_sort_or_restriction_field_is_refused_by_name(service, view):
    msg = find_items(service, view).find(".//m:FindItemResponseMessage", NS)
    assert msg.findtext("m:ResponseCode", namespaces=NS) == "ErrorInvalidRequest"
    assert "'message:From'" in msg.findtext("m:MessageText", namespaces=NS)


def test_restriction_filters_by_size_and_read_state(service):
    rf = find_items(service, '<m:Restriction><t:And><t:IsEqualTo><t:FieldURI FieldURI="message:IsRead"/>'
                             '<t:FieldURIOrConstant><t:Constant Value="false"/></t:FieldURIOrConstant></t:IsEqualTo>'
                             '<t:IsGreaterThan><t:FieldURI FieldURI="item:Size"/><t:FieldURIOrConstant>'
                             '<t:Constant Value="40"/></t:FieldURIOrConstant></t:IsGreaterThan></t:And></m:Restriction>',
                    shape="Default").find(".//m:RootFolder", NS)
    # m0..m4 are read; m0..m9 are 40 bytes, m10..m24 42: unread and over 40 bytes is m10..m24.
    assert rf.get("TotalItemsInView") == "15"
    assert [m.findtext("t:Subject", namespaces=NS) for m in rf.iterfind("t:Items/t:Message", NS)] == [
        f"m{i}" for i in range(10, 25)]


def test_default_shape_has_body_in_get_item_but_not_in_listings(service):
    listed = find_items(service, "", shape="Default").find(".//t:Message", NS)
    assert listed.find("t:Body", NS) is None and listed.findtext("t:Subject", namespaces=NS) == "m0"
    item_id = listed.find("t:ItemId", NS).get("Id")
    got = op(service, '<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape>'
                      f'<m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:GetItem>').find(".//t:Message", NS)
    body = got.find("t:Body", NS)
    assert (body.get("BodyType"), body.text) == ("Text", "body\r\n") and got.find("t:MimeContent", NS) is None


def test_update_item_sets_and_deletes_flag_properties(service, store):
    item = store.account("alice").folder(("INBOX",)).messages[7]
    item_id = ids.item_id("alice", ("INBOX",), f"m:{store.account('alice').folder(('INBOX',)).uidvalidity}:{item.uid}")

    def update(updates: str):
        root = op(service, '<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly">'
                           f'<m:ItemChanges><t:ItemChange><t:ItemId Id="{item_id}"/><t:Updates>{updates}</t:Updates>'
                           '</t:ItemChange></m:ItemChanges></m:UpdateItem>')
        return root.findtext(".//m:ResponseCode", namespaces=NS)

    flag = '<t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/>'
    verb = '<t:ExtendedFieldURI PropertyTag="0x1081" PropertyType="Integer"/>'
    assert update(f'<t:SetItemField>{flag}<t:Message><t:ExtendedProperty>{flag}<t:Value>2</t:Value>'
                  f'</t:ExtendedProperty></t:Message></t:SetItemField><t:SetItemField>{verb}<t:Message>'
                  f'<t:ExtendedProperty>{verb}<t:Value>104</t:Value></t:ExtendedProperty></t:Message></t:SetItemField>'
                  ) == "NoError"
    assert item.flags == {"\\Flagged", "$Forwarded"}
    assert update(f"<t:DeleteItemField>{flag}</t:DeleteItemField>") == "NoError"
    assert item.flags == {"$Forwarded"}
    assert update('<t:SetItemField><t:FieldURI FieldURI="item:Importance"/><t:Message><t:Importance>High'
                  '</t:Importance></t:Message></t:SetItemField>') == "ErrorInvalidRequest"
    assert item.flags == {"$Forwarded"}  # a refused change leaves the item alone
